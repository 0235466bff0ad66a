package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
)

// field is one plan key: how to print it and how to set it.
type field struct {
	key string
	get func(*Plan) string
	set func(*Plan, string) error
}

func intField(key string, ptr func(*Plan) *int) field {
	return field{key,
		func(p *Plan) string { return strconv.Itoa(*ptr(p)) },
		func(p *Plan, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<24 {
				return fmt.Errorf("%s=%q: want a non-negative integer", key, v)
			}
			*ptr(p) = n
			return nil
		}}
}

func boolField(key string, ptr func(*Plan) *bool) field {
	return field{key,
		func(p *Plan) string { return strconv.FormatBool(*ptr(p)) },
		func(p *Plan, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", key, v)
			}
			*ptr(p) = b
			return nil
		}}
}

// fields lists every key in the order String prints them.
var fields = []field{
	intField("tp", func(p *Plan) *int { return &p.TP }),
	intField("pp", func(p *Plan) *int { return &p.PP }),
	intField("dp", func(p *Plan) *int { return &p.DP }),
	{"sp", func(p *Plan) string { return string(p.SP) }, func(p *Plan, v string) error { p.SP = SPStyle(v); return nil }},
	boolField("partial_p2p", func(p *Plan) *bool { return &p.PartialP2P }),
	intField("microbatches", func(p *Plan) *int { return &p.Microbatches }),
	{"schedule", func(p *Plan) string { return string(p.Schedule) }, func(p *Plan, v string) error { p.Schedule = Schedule(v); return nil }},
	intField("mtp", func(p *Plan) *int { return &p.MTP }),
	{"mtp_lambda", func(p *Plan) string { return strconv.FormatFloat(p.MTPLambda, 'g', -1, 64) },
		func(p *Plan, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("mtp_lambda=%q: want a number", v)
			}
			p.MTPLambda = f
			return nil
		}},
	{"packed", func(p *Plan) string { return joinInts(p.Packed) }, setPacked},
	intField("hidden", func(p *Plan) *int { return &p.Hidden }),
	intField("heads", func(p *Plan) *int { return &p.Heads }),
	intField("layers", func(p *Plan) *int { return &p.Layers }),
	intField("ffn", func(p *Plan) *int { return &p.FFN }),
	intField("vocab", func(p *Plan) *int { return &p.Vocab }),
	intField("seq", func(p *Plan) *int { return &p.Seq }),
	intField("batch", func(p *Plan) *int { return &p.Batch }),
	boolField("tied", func(p *Plan) *bool { return &p.Tied }),
	{"dtype", func(p *Plan) string { return strings.ToLower(dtypeName(p.DType)) }, func(p *Plan, v string) error {
		d, err := tensor.ParseDType(v)
		if err != nil {
			return fmt.Errorf("dtype=%q: %v", v, err)
		}
		p.DType = d
		return nil
	}},
	{"seed", func(p *Plan) string { return strconv.FormatUint(p.Seed, 10) }, func(p *Plan, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("seed=%q: want an unsigned integer", v)
		}
		p.Seed = n
		return nil
	}},
	{"bug", func(p *Plan) string { return p.Bug }, func(p *Plan, v string) error { p.Bug = v; return nil }},
}

func dtypeName(d tensor.DType) string {
	switch d {
	case tensor.F64:
		return "fp64"
	case tensor.F32:
		return "fp32"
	case tensor.BF16:
		return "bf16"
	case tensor.F16:
		return "fp16"
	}
	return d.String()
}

func setPacked(p *Plan, v string) error {
	p.Packed = nil
	if v == "" || v == "none" {
		return nil
	}
	total := 0
	for _, s := range strings.Split(v, ":") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1<<20 {
			return fmt.Errorf("packed=%q: want lengths ≥ 1 separated by ':' (e.g. 4:3:5)", v)
		}
		p.Packed = append(p.Packed, n)
		total += n
	}
	p.Seq = total // packed sets the sequence length
	return nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ":")
}

// Keys lists the plan keys.
func Keys() []string {
	ks := make([]string, len(fields))
	for i, f := range fields {
		ks[i] = f.key
	}
	return ks
}

// Set sets one key from its string value.
func (p *Plan) Set(key, value string) error {
	for _, f := range fields {
		if f.key == key {
			return f.set(p, strings.TrimSpace(value))
		}
	}
	return fmt.Errorf("unknown plan key %q (keys: %s)", key, strings.Join(Keys(), ", "))
}

// Get returns one key's value as a string.
func (p *Plan) Get(key string) (string, bool) {
	for _, f := range fields {
		if f.key == key {
			return f.get(p), true
		}
	}
	return "", false
}

// Apply sets the keys of a plan string ("tp=2,pp=2,packed=4:3:5") on top of p. Keys are applied
// left to right, except that packed is applied last so that it always sets seq.
func (p *Plan) Apply(s string) error {
	var packed *string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("plan item %q is not key=value", item)
		}
		k = strings.TrimSpace(k)
		if k == "packed" {
			packed = &v
			continue
		}
		if err := p.Set(k, v); err != nil {
			return err
		}
	}
	if packed != nil {
		return p.Set("packed", *packed)
	}
	return nil
}

// Parse reads a plan string on top of the defaults and validates it.
func Parse(s string) (Plan, error) {
	p := Default()
	if err := p.Apply(s); err != nil {
		return Plan{}, err
	}
	return p, p.Validate()
}

// String prints every key, in a fixed order, in the form Parse reads.
func (p Plan) String() string {
	items := make([]string, 0, len(fields))
	for _, f := range fields {
		v := f.get(&p)
		if (f.key == "packed" || f.key == "bug") && v == "" {
			continue
		}
		items = append(items, f.key+"="+v)
	}
	return strings.Join(items, ",")
}
