package verify

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/tensor"
)

// Per-rank precision bias. Ranks that run the same kernels on statistically alike shards make
// alike rounding errors; one rank whose shard of a tensor is systematically further from the
// reference than its peers' lost precision somewhere (a GEMM accumulated in bf16, a missing
// fp32 upcast), even while every element stays inside the tolerance.
const (
	// BiasRatio: a shard is biased when its rms error (per element relative to |ref| + rms(ref),
	// in units of the noise run's error on the same region when there is one) is at least this
	// multiple of the median of its TP peers'. Over 90 correct low-precision sweep plans the
	// largest ratio was 3.0; over 773 random ones, 5.4 (an fp16 q-projection gradient summed
	// over 5 tokens: short reductions make the statistic noisy). The catalogue's
	// tp-rank-bf16-grad-accumulation gives 14.7 on the LM head's gradient.
	BiasRatio = 8
	// BiasMinNumel: shards smaller than this are not compared (their rms error is too noisy a
	// statistic).
	BiasMinNumel = 256
	// BiasAxis is the mesh axis whose ranks are compared with each other: tensor parallelism,
	// whose ranks run the same kernels on alike slices of the same data.
	BiasAxis = "tp"
)

// RankBias is one shard of a tensor whose error is systematically larger than its peers'.
type RankBias struct {
	Name  string
	Ranks []int   // the candidate ranks holding the shard
	Cell  string  // the shard's coordinates ("tp=1")
	Err   float64 // its rms error over the shard, per element relative to |ref| + rms(ref); in units of the noise run's on that region when there is one
	Peers float64 // the median of the other shards' Err
}

// Ratio is Err over Peers.
func (b RankBias) Ratio() float64 { return b.Err / b.Peers }

func (b RankBias) String() string {
	who := "rank " + joinInts(b.Ranks)
	if len(b.Ranks) > 1 {
		who = "ranks " + joinInts(b.Ranks)
	}
	return fmt.Sprintf("%s's error on %s (%s) is %.1f× its peers': precision loss on %s", who, b.Name, b.Cell, b.Ratio(), who)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// rankBias finds the biased shards of every compared low-precision tensor whose candidate is cut
// into shards along BiasAxis (not partial sums: a summand has no reference of its own). Peers
// are the shards that differ only in their BiasAxis coordinate: the same data, split by model
// dimension, through the same kernels; shards of other data (another micro-batch or
// data-parallel replica) are not alike enough to compare.
func (c *comparer) rankBias(rep *Report) error {
	var w worker
	var noise *traceLayout
	if c.opt.NoiseRun != nil {
		var err error
		if noise, err = layoutOf(c.opt.NoiseRun, c.opt.Rename); err != nil {
			return fmt.Errorf("the noise run: %w", err)
		}
	}
	for _, res := range rep.Results {
		if res.Verdict != Close && res.Verdict != Diverged || res.cand == nil || res.ref == nil || res.cand.partial {
			continue
		}
		if d := res.CandDType; d != tensor.F32 && d != tensor.BF16 && d != tensor.F16 {
			continue
		}
		tp := slices.Index(res.cand.mesh.Axes, BiasAxis)
		if tp < 0 {
			continue
		}
		groups := map[string][]*cell{} // cells alike but for their tp coordinate
		var order []string
		for _, cl := range res.cand.cells {
			if cl.segmented || cl.key[tp] < 0 || tensor.Numel(boxShape(cl.lo, cl.hi)) < BiasMinNumel {
				continue
			}
			k := slices.Clone(cl.key)
			k[tp] = -1
			key := fmt.Sprint(k)
			if groups[key] == nil {
				order = append(order, key)
			}
			groups[key] = append(groups[key], cl)
		}
		var ref, cand, other []float64
		for _, key := range order {
			shards := groups[key]
			if len(shards) < 2 {
				continue
			}
			if ref == nil {
				var err error
				if ref, cand, err = decodeBoth(&w, res); err != nil {
					return err
				}
				if nl := noiseLayout(noise, res); nl != nil {
					if w.noiseBuf, _, err = w.a.assemble(nl, w.noiseBuf, res.RTol); err != nil {
						return err
					}
					other = tensor.Decode(nl.dtype, w.noiseBuf, nil)
				}
			}
			rep.Bias = append(rep.Bias, biasedShards(res, shards, ref, cand, other)...)
		}
	}
	return nil
}

// decodeBoth assembles and decodes both sides of res.
func decodeBoth(w *worker, res *Result) (ref, cand []float64, err error) {
	if w.refBuf, _, err = w.a.assemble(res.ref, w.refBuf, res.RTol); err != nil {
		return nil, nil, err
	}
	if w.candBuf, _, err = w.a.assemble(res.cand, w.candBuf, res.RTol); err != nil {
		return nil, nil, err
	}
	return tensor.Decode(res.RefDType, w.refBuf, nil), tensor.Decode(res.CandDType, w.candBuf, nil), nil
}

// noiseLayout is the noise run's layout of res's tensor when it has one of the same shape.
func noiseLayout(noise *traceLayout, res *Result) *layout {
	if noise == nil {
		return nil
	}
	if nl := noise.byName[res.Name]; nl != nil && slices.Equal(nl.shape, res.RefShape) {
		return nl
	}
	return nil
}

// biasedShards compares the errors of the shards of one tensor held by the ranks of one TP
// group; with the noise run's values (other, else nil) each shard's error is taken in units of
// that run's error on the same region.
func biasedShards(res *Result, shards []*cell, ref, cand, other []float64) []RankBias {
	errs := make([]float64, len(shards))
	for i, cl := range shards {
		errs[i] = regionErr(ref, cand, res.RefShape, cl.lo, cl.hi, res.Floor)
		if other != nil {
			if e := regionErr(ref, other, res.RefShape, cl.lo, cl.hi, res.Floor); e > 0 {
				errs[i] /= e
			} else {
				errs[i] = 0 // the noise run reproduced this region: nothing to compare with
			}
		}
	}
	var out []RankBias
	for i, cl := range shards {
		peers := slices.Concat(errs[:i], errs[i+1:])
		slices.Sort(peers)
		med := peers[len(peers)/2]
		if len(peers)%2 == 0 {
			med = (peers[len(peers)/2-1] + med) / 2
		}
		if med > 0 && errs[i] >= BiasRatio*med {
			out = append(out, RankBias{Name: res.Name, Ranks: pieceRanks(cl.copies), Cell: res.cand.label(cl.key), Err: errs[i], Peers: med})
		}
	}
	return out
}

// regionErr is the rms over the box [lo, hi) of d_i/(|ref_i| + floor), the per-element error
// in the tolerance's own metric: shards whose values differ in scale (the vocab shard holding
// the labels' columns of a logits gradient) stay comparable. 0 when floor is 0.
func regionErr(ref, cand []float64, shape, lo, hi []int, floor float64) float64 {
	if floor <= 0 {
		return 0
	}
	var sum float64
	n := 0
	forBox(shape, lo, hi, func(i int) {
		e := (cand[i] - ref[i]) / (math.Abs(ref[i]) + floor)
		sum += e * e
		n++
	})
	return math.Sqrt(sum / float64(n))
}

// forBox calls f with the flat index of every element of the box [lo, hi), row-major.
func forBox(shape, lo, hi []int, f func(int)) {
	if len(shape) == 0 {
		f(0)
		return
	}
	for d := range shape {
		if hi[d] <= lo[d] {
			return
		}
	}
	st := tensor.Strides(shape)
	idx := slices.Clone(lo)
	for {
		off := 0
		for d, v := range idx {
			off += v * st[d]
		}
		f(off)
		d := len(idx) - 1
		for d >= 0 {
			idx[d]++
			if idx[d] < hi[d] {
				break
			}
			idx[d] = lo[d]
			d--
		}
		if d < 0 {
			return
		}
	}
}
