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
		fs.String(k, v, plan.Describe(k))
	}
	return func() (plan.Plan, error) {
		p := plan.Default()
		if err := applyPlanFlags(fs, &p); err != nil {
			return plan.Plan{}, err
		}
		return p, p.Validate()
	}
}

// applyPlanFlags sets on p the --plan string with the individual plan flags given explicitly in
// place of its keys, in one Apply: a key repeated inside --plan is an error, and packed and seq
// must agree wherever each was given.
func applyPlanFlags(fs *flag.FlagSet, p *plan.Plan) error {
	items, err := plan.Items(fs.Lookup("plan").Value.String())
	if err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	given := map[string]bool{}
	var merged []string
	fs.Visit(func(f *flag.Flag) {
		if _, isKey := p.Get(f.Name); isKey && f.Name != "plan" {
			given[f.Name] = true
			merged = append(merged, f.Name+"="+f.Value.String())
		}
	})
	for _, it := range items {
		if !given[it.Key] {
			merged = append(merged, it.Key+"="+it.Value)
		}
	}
	return p.Apply(strings.Join(merged, ","))
}
