package ir

import (
	"fmt"
	"slices"
)

// Class says how an op executes.
type Class uint8

const (
	Local      Class = iota + 1 // a kernel on this rank's tensors
	Collective                  // all members of Group take part
	PointToPoint
	Meta // trace, free: no computation
)

var classNames = [...]string{Local: "local", Collective: "collective", PointToPoint: "p2p", Meta: "meta"}

// String names the class as cuda/host/program.cpp's op table does ("local", "collective",
// "p2p", "meta").
func (c Class) String() string {
	if int(c) < len(classNames) && classNames[c] != "" {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", c)
}

// Spec is what an op takes: operand counts (-1 = one or more, -2 = broadcast's 1 on the root
// and 0 elsewhere) and required attributes. cuda/host/program.cpp holds the same table;
// cuda/gputraces writes this one to cuda/tests/testdata/ir_spec.json and cuda/tests/host_test.cpp
// checks the C++ table against it.
type Spec struct {
	Class  Class
	In     int
	Out    int
	Ints   []string
	Floats []string
	Strs   []string
}

// Op names. docs/ir.md gives the exact semantics of each.
const (
	OpZeros     = "zeros"
	OpCopy      = "copy"
	OpAdd       = "add"
	OpScale     = "scale"
	OpReshape   = "reshape"
	OpNarrow    = "narrow"
	OpPad       = "pad"
	OpConcat    = "concat"
	OpSplit     = "split"
	OpFlatChunk = "flat_chunk"

	OpEmbedding        = "embedding"
	OpEmbeddingGrad    = "embedding_grad"
	OpLinear           = "linear"
	OpLinearGradInput  = "linear_grad_input"
	OpLinearGradWeight = "linear_grad_weight"
	OpRMSNorm          = "rmsnorm"
	OpRMSNormGrad      = "rmsnorm_grad"
	OpRoPE             = "rope"
	OpRoPEGrad         = "rope_grad"
	OpAttention        = "attention"
	OpAttentionGrad    = "attention_grad"
	OpSwiGLU           = "swiglu"
	OpSwiGLUGrad       = "swiglu_grad"
	OpVocabMax         = "vocab_max"
	OpVocabSumExp      = "vocab_sumexp"
	OpVocabTarget      = "vocab_target"
	OpCELoss           = "ce_loss"
	OpCEGrad           = "ce_grad"

	OpAllReduce     = "all_reduce"
	OpAllGather     = "all_gather"
	OpReduceScatter = "reduce_scatter"
	OpBroadcast     = "broadcast"
	OpAllGatherFlat = "all_gather_flat"

	OpP2P   = "p2p"
	OpTrace = "trace"
	OpFree  = "free"
)

// Reductions of all_reduce.
const (
	ReduceSum = "sum"
	ReduceMax = "max"
)

// Specs lists every op of this version of the IR.
var Specs = map[string]Spec{
	OpZeros:     {Class: Local, In: 0, Out: 1, Ints: []string{"shape"}},
	OpCopy:      {Class: Local, In: 1, Out: 1},
	OpAdd:       {Class: Local, In: 2, Out: 1},
	OpScale:     {Class: Local, In: 1, Out: 1, Floats: []string{"c"}},
	OpReshape:   {Class: Local, In: 1, Out: 1, Ints: []string{"shape"}},
	OpNarrow:    {Class: Local, In: 1, Out: 1, Ints: []string{"dim", "start", "len"}},
	OpPad:       {Class: Local, In: 1, Out: 1, Ints: []string{"dim", "before", "after"}},
	OpConcat:    {Class: Local, In: -1, Out: 1, Ints: []string{"dim"}},
	OpSplit:     {Class: Local, In: 1, Out: -1, Ints: []string{"dim", "sizes"}},
	OpFlatChunk: {Class: Local, In: 1, Out: 1, Ints: []string{"parts", "index"}},

	OpEmbedding:        {Class: Local, In: 2, Out: 1, Ints: []string{"offset"}},
	OpEmbeddingGrad:    {Class: Local, In: 2, Out: 1, Ints: []string{"offset", "rows"}},
	OpLinear:           {Class: Local, In: 2, Out: 1},
	OpLinearGradInput:  {Class: Local, In: 2, Out: 1},
	OpLinearGradWeight: {Class: Local, In: 2, Out: 1},
	OpRMSNorm:          {Class: Local, In: 2, Out: 2},
	OpRMSNormGrad:      {Class: Local, In: 4, Out: 2},
	OpRoPE:             {Class: Local, In: 1, Out: 1, Ints: []string{"pos"}},
	OpRoPEGrad:         {Class: Local, In: 1, Out: 1, Ints: []string{"pos"}},
	OpAttention:        {Class: Local, In: 3, Out: 2, Ints: []string{"cu"}},
	OpAttentionGrad:    {Class: Local, In: 5, Out: 3, Ints: []string{"cu"}},
	OpSwiGLU:           {Class: Local, In: 2, Out: 1},
	OpSwiGLUGrad:       {Class: Local, In: 3, Out: 2},
	OpVocabMax:         {Class: Local, In: 1, Out: 1, Ints: []string{"valid"}},
	OpVocabSumExp:      {Class: Local, In: 2, Out: 1, Ints: []string{"valid"}},
	OpVocabTarget:      {Class: Local, In: 2, Out: 1, Ints: []string{"offset", "valid"}},
	OpCELoss:           {Class: Local, In: 4, Out: 1},
	OpCEGrad:           {Class: Local, In: 5, Out: 1, Ints: []string{"offset", "valid"}, Floats: []string{"scale"}},

	OpAllReduce:     {Class: Collective, In: 1, Out: 1, Strs: []string{"reduce"}},
	OpAllGather:     {Class: Collective, In: 1, Out: 1, Ints: []string{"dim"}},
	OpReduceScatter: {Class: Collective, In: 1, Out: 1, Ints: []string{"dim"}},
	OpBroadcast:     {Class: Collective, In: -2, Out: 1, Ints: []string{"root"}}, // In: 1 on the root, 0 elsewhere
	OpAllGatherFlat: {Class: Collective, In: 1, Out: 1, Ints: []string{"shape"}},

	OpP2P:   {Class: PointToPoint},
	OpTrace: {Class: Meta, In: 1},
	OpFree:  {Class: Meta, In: -1},
}

// Error is a malformed program: which rank, which op (index and rendering), what is wrong.
type Error struct {
	Rank  int
	Index int // op index, -1 for the program header
	Op    string
	Msg   string
}

func (e *Error) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("ir: rank %d: %s", e.Rank, e.Msg)
	}
	return fmt.Sprintf("ir: rank %d op %d %s: %s", e.Rank, e.Index, e.Op, e.Msg)
}

// Validate checks the program is well formed: known ops with their operands and attributes,
// every symbol defined once before it is read, groups that contain this rank, peers in range,
// trace keys unique.
func (p *Program) Validate() error {
	hdr := func(format string, args ...any) error {
		return &Error{Rank: p.Rank, Index: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if p.Format != Format || p.Version != Version {
		return hdr("format %q version %d, this executor knows %q version %d", p.Format, p.Version, Format, Version)
	}
	if p.World < 1 || p.Rank < 0 || p.Rank >= p.World {
		return hdr("rank %d outside world %d", p.Rank, p.World)
	}
	defined := map[string]bool{}
	for _, s := range p.Inputs {
		if defined[s] {
			return hdr("input %q listed twice", s)
		}
		defined[s] = true
	}
	keys := map[string]bool{}
	for i := range p.Ops {
		if err := p.validateOp(i, defined, keys); err != nil {
			return err
		}
	}
	return nil
}

func (p *Program) validateOp(i int, defined, keys map[string]bool) error {
	o := &p.Ops[i]
	bad := func(format string, args ...any) error {
		return &Error{Rank: p.Rank, Index: i, Op: o.String(), Msg: fmt.Sprintf(format, args...)}
	}
	spec, ok := Specs[o.Op]
	if !ok {
		return bad("unknown op %q", o.Op)
	}
	if err := checkArity(spec, o, p.Rank); err != nil {
		return bad("%v", err)
	}
	if err := checkAttrs(spec, o.Attr); err != nil {
		return bad("%v", err)
	}
	for _, s := range o.In {
		if !defined[s] {
			return bad("reads %q before it is defined (or after it is freed)", s)
		}
	}
	switch spec.Class {
	case Collective:
		if err := p.checkGroup(o.Group); err != nil {
			return bad("%v", err)
		}
	case PointToPoint:
		if err := p.checkTransfers(o.P2P, defined); err != nil {
			return bad("%v", err)
		}
	}
	if o.Op == OpTrace {
		if o.Trace == nil || o.Trace.Key == "" || o.Trace.Name == "" {
			return bad("trace needs a tag with a key and a name")
		}
		if keys[o.Trace.Key] {
			return bad("trace key %q used twice", o.Trace.Key)
		}
		keys[o.Trace.Key] = true
	}
	if o.Op == OpFree {
		for _, s := range o.In {
			delete(defined, s)
		}
	}
	for _, s := range o.Out {
		if s == "" || defined[s] {
			return bad("defines %q, which is empty or already defined", s)
		}
		defined[s] = true
	}
	return nil
}

func checkArity(spec Spec, o *Op, rank int) error {
	wantIn := spec.In
	if spec.In == -2 { // broadcast: the root sends, the others only receive
		wantIn = 0
		if o.Group != nil && o.Attr.Ints["root"] != nil && len(o.Attr.Ints["root"]) == 1 {
			if root := o.Attr.Ints["root"][0]; root >= 0 && root < len(o.Group.Ranks) && o.Group.Ranks[root] == rank {
				wantIn = 1
			}
		}
	}
	switch {
	case wantIn == -1 && len(o.In) == 0:
		return fmt.Errorf("takes at least one input")
	case wantIn >= 0 && spec.Class != PointToPoint && len(o.In) != wantIn:
		return fmt.Errorf("takes %d inputs, has %d", wantIn, len(o.In))
	case spec.Out == -1 && len(o.Out) == 0:
		return fmt.Errorf("gives at least one output")
	case spec.Out >= 0 && len(o.Out) != spec.Out:
		return fmt.Errorf("gives %d outputs, has %d", spec.Out, len(o.Out))
	case spec.Class == PointToPoint && (len(o.P2P) == 0 || len(o.In) > 0):
		return fmt.Errorf("p2p takes transfers, not inputs")
	case spec.Class == Collective && o.Group == nil:
		return fmt.Errorf("a collective needs a group")
	}
	return nil
}

func checkAttrs(spec Spec, a Attrs) error {
	for _, k := range spec.Ints {
		if len(a.Ints[k]) == 0 {
			return fmt.Errorf("missing integer attribute %q", k)
		}
	}
	for _, k := range spec.Floats {
		if _, ok := a.Floats[k]; !ok {
			return fmt.Errorf("missing float attribute %q", k)
		}
	}
	for _, k := range spec.Strs {
		if _, ok := a.Strs[k]; !ok {
			return fmt.Errorf("missing string attribute %q", k)
		}
	}
	return nil
}

func (p *Program) checkGroup(g *Group) error {
	if g.Name == "" || len(g.Ranks) == 0 {
		return fmt.Errorf("group needs a name and ranks")
	}
	seen := map[int]bool{}
	for _, r := range g.Ranks {
		if r < 0 || r >= p.World || seen[r] {
			return fmt.Errorf("group %s: rank %d out of world %d or repeated", g, r, p.World)
		}
		seen[r] = true
	}
	if !seen[p.Rank] {
		return fmt.Errorf("group %s does not contain this rank %d", g, p.Rank)
	}
	return nil
}

func (p *Program) checkTransfers(ts []Transfer, defined map[string]bool) error {
	for _, t := range ts {
		if t.Peer < 0 || t.Peer >= p.World || t.Peer == p.Rank {
			return fmt.Errorf("%v: peer outside world %d or self", t, p.World)
		}
		if slices.ContainsFunc(t.Shape, func(d int) bool { return d < 0 }) {
			return fmt.Errorf("%v: negative dim", t)
		}
		if t.Send && !defined[t.Sym] {
			return fmt.Errorf("%v: sends %q before it is defined", t, t.Sym)
		}
	}
	for _, t := range ts { // receives define their symbols after every send of the batch read
		if !t.Send {
			if t.Sym == "" || defined[t.Sym] {
				return fmt.Errorf("%v: receives into %q, which is empty or already defined", t, t.Sym)
			}
			defined[t.Sym] = true
		}
	}
	return nil
}
