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
	fs.String("plan", "", "whole plan as key=value pairs, e.g. 'tp=2,pp=2,sp=megatron,packed=4:3:5'")
	def := plan.Default()
	for _, k := range plan.Keys() {
		v, _ := def.Get(k)
		fs.String(k, v, fmt.Sprintf("plan key %s", k))
	}
	return func() (plan.Plan, error) {
		p := plan.Default()
		if err := applyPlanFlags(fs, &p); err != nil {
			return plan.Plan{}, err
		}
		return p, p.Validate()
	}
}

// applyPlanFlags sets on p the --plan string, then the individual plan flags given explicitly.
// The individual flags go through one Apply, which sets packed last, so packed always sets seq
// whatever the flag order.
func applyPlanFlags(fs *flag.FlagSet, p *plan.Plan) error {
	if err := p.Apply(fs.Lookup("plan").Value.String()); err != nil {
		return err
	}
	var given []string
	fs.Visit(func(f *flag.Flag) {
		if _, isKey := p.Get(f.Name); isKey && f.Name != "plan" {
			given = append(given, f.Name+"="+f.Value.String())
		}
	})
	return p.Apply(strings.Join(given, ","))
}
