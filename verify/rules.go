package verify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// TolRule sets the relative tolerance of the logical tensors whose name (after renaming) matches
// Pattern (the --tol 'REGEX=rtol' flag). RTol is in the units of every other tolerance: an
// element passes when |cand − ref| ≤ RTol·(|ref| + rms(ref)), and the normwise bound is
// NormOfRTol·RTol. A rule takes precedence over dtype overrides, over the noise reference of
// low-precision runs and over calibration: the user said what this tensor's bound is.
type TolRule struct {
	Pattern *regexp.Regexp
	RTol    float64
}

// RuleUse records how one --tol or --ignore rule applied, in the order the rules were given.
type RuleUse struct {
	Flag    string  // "tol" or "ignore"
	Pattern string  // the regular expression as given
	RTol    float64 // tol rules: the tolerance set
	Matched int     // tensors the rule applied to: a tol rule only where it is the first match
	// Shadowed counts the tensors a tol rule matches where an earlier rule came first.
	Shadowed int
}

// Unmatched reports whether the rule applied to no tensor (a warning: a typo, or a tensor that
// is not in these traces).
func (u RuleUse) Unmatched() bool { return u.Matched == 0 }

// String prints the rule as the flag that gave it.
func (u RuleUse) String() string {
	if u.Flag == "tol" {
		return fmt.Sprintf("--tol '%s=%s'", u.Pattern, FormatRTol(u.RTol))
	}
	return fmt.Sprintf("--ignore '%s'", u.Pattern)
}

// FormatRTol prints a tolerance as people write it: 1e-8, 0.05, 2.
func FormatRTol(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	s = strings.Replace(s, "e-0", "e-", 1)
	return strings.Replace(s, "e+0", "e+", 1)
}

// IgnoredTensor is a logical tensor an --ignore rule left out of the comparison: listed in the
// report, never silently dropped.
type IgnoredTensor struct {
	Name    string
	Kind    trace.Kind
	Order   int
	Pattern string // the first --ignore rule that matched it
}

// ParseTolFlags reads the values of a repeatable --tol flag: a number for every floating-point
// dtype ("1e-6"), dtype=number pairs ("bf16=2e-2,fp32=1e-5"), or a per-tensor rule
// "REGEX=rtol" ("^grad/.*norm=1e-6"). A value is dtype pairs when every comma-separated item
// names a dtype before its '='; otherwise the whole value is one rule, split at its last '='
// (so a regular expression may hold commas). Rules keep the order given: the first rule whose
// pattern matches a tensor's name (unanchored, as --filter) sets its tolerance.
func ParseTolFlags(values []string) (Tolerances, []TolRule, error) {
	var tol Tolerances
	var rules []TolRule
	for _, v := range values {
		if isDTypeList(v) || !strings.Contains(v, "=") {
			t, err := ParseTolerances(v)
			if err != nil {
				return nil, nil, err
			}
			if tol == nil && t != nil {
				tol = Tolerances{}
			}
			for d, x := range t {
				tol[d] = x
			}
			continue
		}
		i := strings.LastIndex(v, "=")
		pat, num := v[:i], v[i+1:]
		if pat == "" {
			return nil, nil, fmt.Errorf("--tol %q: empty regular expression before '='", v)
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, nil, fmt.Errorf("--tol %q: %w", v, err)
		}
		r, err := parseRTol(num)
		if err != nil {
			return nil, nil, fmt.Errorf("--tol %q: %q is not a finite, non-negative number", v, num)
		}
		rules = append(rules, TolRule{Pattern: re, RTol: r})
	}
	return tol, rules, nil
}

// isDTypeList reports whether every comma-separated item of s is dtype=value.
func isDTypeList(s string) bool {
	for _, item := range strings.Split(s, ",") {
		name, _, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return false
		}
		if _, err := tensor.ParseDType(strings.TrimSpace(name)); err != nil {
			return false
		}
	}
	return true
}

// ParseIgnoreFlags compiles the values of a repeatable --ignore flag.
func ParseIgnoreFlags(values []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, v := range values {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("--ignore %q: %w", v, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// ruleFor is the index of the first TolRule matching name, or -1.
func (o *Options) ruleFor(name string) int {
	for i, r := range o.TolRules {
		if r.Pattern.MatchString(name) {
			return i
		}
	}
	return -1
}

// ignoreTensors removes from both layouts the tensors an --ignore rule matches and returns them
// (by the reference's order, then the candidate's tensors only it has) with each rule's count.
func ignoreTensors(rl, cl *traceLayout, res []*regexp.Regexp) ([]IgnoredTensor, []int) {
	counts := make([]int, len(res))
	if len(res) == 0 {
		return nil, counts
	}
	var out []IgnoredTensor
	match := func(name string) int {
		for i, re := range res {
			if re.MatchString(name) {
				return i
			}
		}
		return -1
	}
	for _, tl := range []*traceLayout{rl, cl} {
		for _, l := range tl.tensors {
			i := match(l.name)
			if i < 0 || (tl == cl && rl.byName[l.name] != nil) {
				continue
			}
			counts[i]++
			out = append(out, IgnoredTensor{Name: l.name, Kind: l.kind, Order: l.order, Pattern: res[i].String()})
		}
	}
	for _, tl := range []*traceLayout{rl, cl} {
		tl.drop(func(l *layout) bool { return match(l.name) >= 0 })
	}
	return out, counts
}

// ruleUses records the rules of opt and how many tensors each applied to.
func ruleUses(opt *Options, results []*Result, ignored []int) []RuleUse {
	var out []RuleUse
	for i, r := range opt.TolRules {
		u := RuleUse{Flag: "tol", Pattern: r.Pattern.String(), RTol: r.RTol}
		for _, res := range results {
			switch first := opt.ruleFor(res.Name); {
			case first == i:
				u.Matched++
			case first < i && r.Pattern.MatchString(res.Name):
				u.Shadowed++
			}
		}
		out = append(out, u)
	}
	for i, re := range opt.Ignore {
		out = append(out, RuleUse{Flag: "ignore", Pattern: re.String(), Matched: ignored[i]})
	}
	return out
}

// UnmatchedRules lists the rules that applied to no tensor.
func (r *Report) UnmatchedRules() []RuleUse {
	var out []RuleUse
	for _, u := range r.Rules {
		if u.Unmatched() {
			out = append(out, u)
		}
	}
	return out
}
