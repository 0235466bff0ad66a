package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/spcheck/spcheck/plan"
)

// planFlags registers --plan and one flag per plan key on fs. The returned function builds the
// plan after fs.Parse: defaults, then --plan, then the individual flags given explicitly.
func planFlags(fs *flag.FlagSet) func() (plan.Plan, error) {
	planStr := fs.String("plan", "", "whole plan as key=value pairs, e.g. 'tp=2,pp=2,sp=megatron,packed=4:3:5'")
	def := plan.Default()
	for _, k := range plan.Keys() {
		v, _ := def.Get(k)
		fs.String(k, v, fmt.Sprintf("plan key %s", k))
	}
	return func() (plan.Plan, error) {
		p := plan.Default()
		if err := p.Apply(*planStr); err != nil {
			return plan.Plan{}, err
		}
		// Individual flags go through one Apply, which sets packed last, so packed always
		// sets seq whatever the flag order.
		var given []string
		fs.Visit(func(f *flag.Flag) {
			if _, isKey := p.Get(f.Name); isKey && f.Name != "plan" {
				given = append(given, f.Name+"="+f.Value.String())
			}
		})
		if err := p.Apply(strings.Join(given, ",")); err != nil {
			return plan.Plan{}, err
		}
		return p, p.Validate()
	}
}
