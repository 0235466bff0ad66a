package fuzz

import (
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
)

func TestAlgebraPropertyHolds(t *testing.T) {
	params := gopter.DefaultTestParametersWithSeed(1)
	params.MinSuccessfulTests = 300
	props := gopter.NewProperties(params)
	props.Property("collective algebra", prop.ForAll(func(c AlgebraCase) string {
		if err := CheckAlgebra(c); err != nil {
			return err.Error()
		}
		return ""
	}, AlgebraGen()))
	props.TestingRun(t)
}

func TestEveryLawHoldsOnEveryGroupSize(t *testing.T) {
	for i, l := range Laws() {
		for n := 1; n <= 4; n++ {
			if err := CheckAlgebra(AlgebraCase{Law: i, N: n, Shape: []int{2, 3, 2}, Seed: 5}); err != nil {
				t.Errorf("%s, n=%d: %v", l.Name, n, err)
			}
		}
	}
}

// region returns the table's region whose name starts with prefix.
func region(t *testing.T, prefix string) Region {
	t.Helper()
	for _, r := range Regions {
		if strings.HasPrefix(r.Name, prefix) {
			return r
		}
	}
	t.Fatalf("no region %q", prefix)
	return Region{}
}

// TestWrongPairingsBreakALaw: the laws have teeth. Each case is a real bug class of
// the catalogue (a wrong adjoint, a rank-unaware slice, partial P2P of a shard) built by
// changing one op of a correct region; the law named must catch it.
func TestWrongPairingsBreakALaw(t *testing.T) {
	ehProj := region(t, "gather_from_tensor_model_parallel_region")
	seqGather := region(t, "gather_from_sequence_parallel_region (column")
	scatter := region(t, "scatter_to_sequence_parallel_region")
	partialP2P := region(t, "partial send/recv")
	copyTP := region(t, "copy_to_tensor_model_parallel_region")
	cases := []struct {
		reason string
		r      Region
		law    string
	}{
		{"all-gather whose backward reduce-scatters a replicated gradient (grad × tp, Megatron-LM 06e9f28b30)",
			with(ehProj, func(r *Region) { r.Bwd = func(m *mini, g gval) gval { return m.reduceScatter(g, 2) } }), "adjoint law"},
		{"sequence all-gather whose backward splits a partial gradient (other ranks' contributions lost)",
			with(seqGather, func(r *Region) { r.Bwd = func(m *mini, g gval) gval { return m.narrowRankAware(g, 1) } }), "adjoint law"},
		{"residual sliced at offset 0 on every TP rank (vLLM, seed 002)",
			with(scatter, func(r *Region) {
				r.Fwd = func(m *mini, x gval) gval {
					return m.local(x, func(_ int, s []int) (string, ir.Attrs, []int) {
						l := s[1] / m.n
						return ir.OpNarrow, ir.Ints("dim", 1, "start", 0, "len", l), withDim(s, 1, l)
					})
				}
			}), "forward law"},
		{"partial send/recv of a sequence shard (Paddle, seed 001)",
			with(partialP2P, func(r *Region) { r.In, r.Out, r.GradOut, r.GradIn = shard(1), shard(1), shard(1), shard(1) }), "forward law"},
		{"copy_to_tensor_model_parallel_region with no backward all-reduce",
			with(copyTP, func(r *Region) { r.Bwd = identity }), "backward law"},
	}
	for _, c := range scenario.Cases(t, cases) {
		err := CheckRegion(c.r, 2, []int{1, 2, 2}, 3)
		if err == nil || !strings.Contains(err.Error(), c.law) {
			t.Errorf("%s: got %v, want a %s violation", c.reason, err, c.law)
		}
	}
}

func with(r Region, f func(*Region)) Region {
	f(&r)
	return r
}

// TestRegionsCoverThePlanner: every communication op the planner emits (by role and op kind)
// is one of the table's regions, so the laws are checked on the pairs the planner really
// uses; a new collective in the planner fails here until the table declares its layouts.
func TestRegionsCoverThePlanner(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	covered := map[string]bool{}
	for i := 0; i < 100; i++ {
		p := Draw(r, Mesh2Space())
		c, err := simulate.Compile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, prog := range c.Programs {
			for _, o := range prog.Ops {
				if class := ir.Specs[o.Op].Class; class != ir.Collective && class != ir.PointToPoint && !tableRole(o.Role) {
					continue // a local compute op
				}
				if regionFor(o.Role, o.Op) == "" {
					t.Fatalf("plan %s: rank %d emits %s with role %q, which no region of the algebra table declares", p, prog.Rank, o.Op, o.Role)
				}
				for _, role := range strings.Split(o.Role, "+") {
					covered[role] = true
				}
			}
		}
	}
	for _, reg := range Regions {
		for _, role := range append(slices.Clone(reg.FwdRoles), reg.BwdRoles...) {
			if !covered[role] {
				t.Errorf("region %q names role %q, which the planner never emitted in 100 plans", reg.Name, role)
			}
		}
	}
}

// tableRole reports whether some region names role.
func tableRole(role string) bool {
	for _, r := range Regions {
		if slices.Contains(r.FwdRoles, role) || slices.Contains(r.BwdRoles, role) {
			return true
		}
	}
	return false
}

func TestShrinkAlgebraTowardTwoRanksAndUnitDims(t *testing.T) {
	c := AlgebraCase{Law: 0, N: 4, Shape: []int{3, 2, 1}, Seed: 9}
	var got []AlgebraCase
	for s := shrinkAlgebra(c); ; {
		v, ok := s()
		if !ok {
			break
		}
		got = append(got, v.(AlgebraCase))
	}
	if len(got) != 4 || got[0].N != 2 || got[1].Shape[0] != 1 || got[2].Shape[1] != 1 || got[3].Seed != 1 {
		t.Errorf("shrinks of %v: %v", c, got)
	}
}
