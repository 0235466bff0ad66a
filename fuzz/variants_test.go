package fuzz

import (
	"fmt"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
)

// Test-only bug variants, so the detection property and the campaign are tested whatever the
// catalogue (package bugs) holds. Each is a real bug class of the catalogue written as a
// program rewrite selected by role.
const (
	testResidualAtZero = "fuzz-test.residual-at-zero"   // vLLM: residual cut at offset 0 on every TP rank (vLLM #33322)
	testEHProjAdjoint  = "fuzz-test.eh-proj-rs-adjoint" // MTP eh_proj gather whose backward reduce-scatters (Megatron-LM 06e9f28b30)
	testNoTPGradSum    = "fuzz-test.no-tp-grad-sum"     // SP norm grads never all-reduced over TP (PaddleFleet #1146)
)

// testCatalogue is what the tests fuzz with: the catalogue's variants and the test-only ones.
var testCatalogue = append(bugs.Variants(), testVariants...)

var testVariants = []*simulate.Variant{
	{Name: testResidualAtZero, Summary: "rank-unaware residual slice",
		Programs: rewriteRole(simulate.RoleResidualSlice, func(o ir.Op, _ *ir.Program) []ir.Op {
			o.Attr.Ints = map[string][]int{"dim": o.Attr.Ints["dim"], "start": {0}, "len": o.Attr.Ints["len"]}
			return []ir.Op{o}
		})},
	{Name: testEHProjAdjoint, Summary: "eh_proj gather backward reduce-scatters a replicated gradient",
		Programs: rewriteRole(simulate.RoleEHProjGather+".bwd", func(o ir.Op, p *ir.Program) []ir.Op {
			o.Op, o.Attr = ir.OpReduceScatter, ir.Ints("dim", o.Attr.Int("dim"))
			o.Group = groupOf(p, simulate.RoleEHProjGather)
			return []ir.Op{o}
		})},
	{Name: testNoTPGradSum, Summary: "SP norm gradients not all-reduced over TP",
		Programs: rewriteRole(simulate.RoleGradTPSum, func(o ir.Op, _ *ir.Program) []ir.Op {
			return []ir.Op{{Op: ir.OpCopy, In: o.In, Out: o.Out, Role: o.Role}}
		})},
}

// rewriteRole replaces every op with the role by f's ops, on every rank.
func rewriteRole(role string, f func(o ir.Op, p *ir.Program) []ir.Op) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		for _, p := range c.Programs {
			ir.Rewrite(p, func(o ir.Op) ([]ir.Op, bool) {
				if o.Role != role {
					return nil, false
				}
				return f(o, p), true
			})
		}
		return nil
	}
}

// groupOf is the group of the first op with the role in p.
func groupOf(p *ir.Program, role string) *ir.Group {
	for _, o := range p.Ops {
		if o.Role == role {
			return o.Group
		}
	}
	panic(fmt.Sprintf("rank %d has no op with role %s", p.Rank, role))
}
