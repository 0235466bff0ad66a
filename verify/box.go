package verify

import "github.com/spcheck/spcheck/tensor"

// boxRuns calls fn for every contiguous run of a box moved between two row-major arrays: the box
// has extent box and starts at dstLo in an array of shape dstShape and at srcLo in one of shape
// srcShape. Offsets and run lengths are in elements. Trailing dims that span both arrays whole
// merge into one run, so a dim-0 shard is a single call.
func boxRuns(dstShape, dstLo, srcShape, srcLo, box []int, fn func(dst, src, n int)) {
	nd := len(box)
	if nd == 0 {
		fn(0, 0, 1)
		return
	}
	if tensor.Numel(box) == 0 {
		return
	}
	k := nd - 1
	run := box[k]
	for k > 0 && box[k] == srcShape[k] && box[k] == dstShape[k] {
		k--
		run *= box[k]
	}
	ds, ss := tensor.Strides(dstShape), tensor.Strides(srcShape)
	idx := make([]int, k)
	for {
		d := dstLo[k] * ds[k]
		s := srcLo[k] * ss[k]
		for i := 0; i < k; i++ {
			d += (dstLo[i] + idx[i]) * ds[i]
			s += (srcLo[i] + idx[i]) * ss[i]
		}
		fn(d, s, run)
		i := k - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < box[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// contiguous reports whether the box [lo,hi) of an array of shape is one contiguous run.
func contiguous(shape, lo, hi []int) bool {
	d := 0
	for d < len(shape) && hi[d]-lo[d] == 1 {
		d++
	}
	for d++; d < len(shape); d++ {
		if lo[d] != 0 || hi[d] != shape[d] {
			return false
		}
	}
	return true
}

// flatIndex is the row-major offset of idx in shape.
func flatIndex(shape, idx []int) int {
	off := 0
	for i, v := range idx {
		off = off*shape[i] + v
	}
	return off
}

// growBytes returns a buffer of n bytes, reusing b's storage when it is large enough.
func growBytes(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func growFloats(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func zeros(n int) []int { return make([]int, n) }
