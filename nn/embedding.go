package nn

import "github.com/spcheck/spcheck/tensor"

// Embedding returns the rows w[ids[t]] of the table w [V,H] as [len(ids), H]. An id outside
// [0,V) is a caller bug and panics.
func Embedding(ids []int, w *tensor.Dense) *tensor.Dense {
	v := embedRows("Embedding", w)
	for t, id := range ids {
		if id < 0 || id >= v {
			shapePanic("Embedding", "id %d at token %d is outside the vocabulary [0,%d)", id, t, v)
		}
	}
	return EmbeddingShard(ids, w, 0)
}

func embedRows(op string, w *tensor.Dense) int {
	if len(w.Shape) != 2 {
		shapePanic(op, "table %v is not [V, H]", w.Shape)
	}
	return w.Shape[0]
}

// EmbeddingShard is the vocab-parallel lookup (Megatron's VocabParallelEmbedding): w holds rows
// [vocabStart, vocabStart+rows) of the table; tokens whose id falls outside get a zero row, so
// the sum over the vocab shards is the full lookup.
func EmbeddingShard(ids []int, w *tensor.Dense, vocabStart int) *tensor.Dense {
	rows := embedRows("EmbeddingShard", w)
	h := w.Shape[1]
	y := tensor.New(len(ids), h)
	for t, id := range ids {
		if r := id - vocabStart; r >= 0 && r < rows {
			copy(y.Data[t*h:(t+1)*h], w.Data[r*h:(r+1)*h])
		}
	}
	return y
}

// EmbeddingBackward scatter-adds dy [len(ids), H] (any shape with len(ids)·H elements) into
// a zero table of vocab rows: dW[ids[t]] += dy[t], in token order.
func EmbeddingBackward(ids []int, dy *tensor.Dense, vocab int) *tensor.Dense {
	return EmbeddingShardBackward(ids, dy, vocab, 0)
}

// EmbeddingShardBackward is EmbeddingBackward for the rows [vocabStart, vocabStart+rows) of the
// table; tokens of other shards contribute nothing.
func EmbeddingShardBackward(ids []int, dy *tensor.Dense, rows, vocabStart int) *tensor.Dense {
	n, h := lastDim("EmbeddingBackward", dy.Shape)
	if n != len(ids) {
		shapePanic("EmbeddingBackward", "%d ids for dy %v", len(ids), dy.Shape)
	}
	dw := tensor.New(rows, h)
	for t, id := range ids {
		if r := id - vocabStart; r >= 0 && r < rows {
			dst, src := dw.Data[r*h:(r+1)*h], dy.Data[t*h:(t+1)*h]
			for j := range dst {
				dst[j] += src[j]
			}
		}
	}
	return dw
}
