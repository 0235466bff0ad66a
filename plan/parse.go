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

// MaxSize caps every integer plan key: sizes past it cannot be held in memory by any executor
// (a hidden size of 2²⁴ alone makes a 2⁴⁸-element weight), and the cap keeps every product of
// sizes the simulator forms inside an int.
const MaxSize = 1 << 24

func intField(key string, ptr func(*Plan) *int) field {
	return field{key,
		func(p *Plan) string { return strconv.Itoa(*ptr(p)) },
		func(p *Plan, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%s=%q: want a non-negative integer", key, v)
			}
			if n > MaxSize {
				return fmt.Errorf("%s=%d is past the cap on plan sizes (%d = 2^24)", key, n, MaxSize)
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

// Apply sets the keys of a plan string ("tp=2,pp=2,packed=4:3:5") on top of p. A key may appear
// once. Keys are applied left to right, except that packed is applied last: it sets seq to the
// sum of its lengths, so a seq in the same string must agree with it.
func (p *Plan) Apply(s string) error {
	items, err := Items(s)
	if err != nil {
		return err
	}
	var packed, seq *string
	for _, it := range items {
		switch it.Key {
		case "packed":
			packed = &it.Value
			continue
		case "seq":
			seq = &it.Value
		}
		if err := p.Set(it.Key, it.Value); err != nil {
			return err
		}
	}
	if packed == nil {
		return nil
	}
	if err := p.Set("packed", *packed); err != nil {
		return err
	}
	if seq != nil && len(p.Packed) > 0 && strings.TrimSpace(*seq) != strconv.Itoa(p.Seq) {
		return fmt.Errorf("packed=%s makes rows of %d tokens but seq=%s: packed sets seq, so drop seq or make it %d",
			strings.TrimSpace(*packed), p.Seq, strings.TrimSpace(*seq), p.Seq)
	}
	return nil
}

// Item is one key=value pair of a plan string.
type Item struct{ Key, Value string }

// Items splits a plan string into its key=value pairs, in order, refusing an item without '='
// and a key given twice (which would otherwise silently mean the last one).
func Items(s string) ([]Item, error) {
	var items []Item
	seen := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("plan item %q is not key=value", item)
		}
		k = strings.TrimSpace(k)
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("plan key %s is given twice (%s=%s and %s=%s): give it once", k, k, prev, k, strings.TrimSpace(v))
		}
		seen[k] = strings.TrimSpace(v)
		items = append(items, Item{k, v})
	}
	return items, nil
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

// descriptions says what each key means, for --help.
var descriptions = map[string]string{
	"tp":           "tensor-parallel ranks (Megatron column/row-parallel linears, vocab-parallel embedding and loss)",
	"pp":           "pipeline stages; each holds a contiguous run of layers",
	"dp":           "data-parallel replicas; each takes batch/dp rows",
	"sp":           "sequence parallelism: off, megatron (norms/dropout on sequence shards) or vllm (residual scattered)",
	"partial_p2p":  "Paddle's enable_partial_send_recv: pipeline hand-offs send 1/tp of the activation and all-gather it",
	"microbatches": "micro-batches per optimizer step (pipeline)",
	"schedule":     "pipeline schedule: gpipe or 1f1b",
	"mtp":          "multi-token-prediction depths D (DeepSeek-V3 MTP modules after the main model)",
	"mtp_lambda":   "MTP loss weight λ: loss = L_main + (λ/D)·Σ L_k",
	"packed":       "packed sequence lengths per row, e.g. 4:3:5 (cu_seqlens); sets seq to their sum",
	"hidden":       "model width H",
	"heads":        "attention heads; hidden/heads (the head dim) must be even",
	"layers":       "transformer layers of the main model",
	"ffn":          "SwiGLU inner size",
	"vocab":        "vocabulary size (need not divide by tp: vocab-parallel pads)",
	"seq":          "tokens per batch row (set by packed when packed)",
	"batch":        "batch rows per step (a multiple of dp × microbatches)",
	"tied":         "the LM head shares the embedding weight",
	"dtype":        "storage dtype of the run: fp64, fp32, bf16 or fp16",
	"seed":         "seed of the initial weights and the input batch",
	"bug":          "a catalogue bug variant to inject (spcheck bugs lists them); empty: the correct program",
}

// Describe says what a plan key means ("" for an unknown key).
func Describe(key string) string { return descriptions[key] }

// modelKeys are the keys of the model configuration that fix what a run computes, whatever its
// dtype, seed, parallel split or bug: two runs that differ in one of them are runs of two
// different models.
var modelKeys = []string{"mtp", "mtp_lambda", "packed", "hidden", "heads", "layers", "ffn", "vocab", "seq", "batch", "tied"}

// ModelDiff lists the model keys on which p and q differ, as "hidden=16 vs hidden=32"; nil when
// they describe the same model (dtype, seed, parallel keys and bug are not compared).
func (p Plan) ModelDiff(q Plan) []string {
	var out []string
	for _, k := range modelKeys {
		a, _ := p.Get(k)
		b, _ := q.Get(k)
		if a != b {
			out = append(out, fmt.Sprintf("%s=%s vs %s=%s", k, a, k, b))
		}
	}
	return out
}

// Short prints only the keys whose values differ from Default, in String's order ("" for the
// default plan): the form people write. Parse(p.Short()) is p, as long as the defaults are the
// same, so traces record String and Short is for display.
func (p Plan) Short() string {
	def := Default()
	var items []string
	for _, f := range fields {
		if v := f.get(&p); v != f.get(&def) {
			items = append(items, f.key+"="+v)
		}
	}
	return strings.Join(items, ",")
}
