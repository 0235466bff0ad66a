package ir

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Format and Version identify a serialised program; an executor refuses other versions.
const (
	Format  = "spcheck-program"
	Version = 1
)

// Program is one rank's program: the symbols it starts with (loaded from the rank's init file)
// and its ops, executed in order.
type Program struct {
	Format  string         `json:"format"`
	Version int            `json:"version"`
	Plan    string         `json:"plan,omitempty"` // plan string that produced it
	Rank    int            `json:"rank"`
	World   int            `json:"world"`
	Mesh    Mesh           `json:"mesh"`
	Coord   map[string]int `json:"coord"`
	Inputs  []string       `json:"inputs"` // symbols present before the first op
	Ops     []Op           `json:"ops"`
}

// Mesh is the device mesh, outermost axis first (the trace's mesh, without virtual axes).
type Mesh struct {
	Axes  []string `json:"axes"`
	Shape []int    `json:"shape"`
}

// Op is one instruction. Which fields are used depends on Op (see Specs and docs/ir.md).
type Op struct {
	Op    string     `json:"op"`
	In    []string   `json:"in,omitempty"`
	Out   []string   `json:"out,omitempty"`
	Attr  Attrs      `json:"attr,omitzero"`
	Group *Group     `json:"group,omitempty"` // collectives
	P2P   []Transfer `json:"p2p,omitempty"`   // op "p2p"
	Trace *Tag       `json:"trace,omitempty"` // op "trace"
	// Role says what the op is for in the parallel plan (e.g. "pp.send_forward",
	// "sp.residual_slice", "grad.tp_sum"); executors ignore it, rewrites (bug variants) and
	// error messages use it.
	Role string `json:"role,omitempty"`
}

// Attrs are an op's static attributes: integers (lists; a scalar is a one-element list),
// floats and strings.
type Attrs struct {
	Ints   map[string][]int   `json:"ints,omitempty"`
	Floats map[string]float64 `json:"floats,omitempty"`
	Strs   map[string]string  `json:"strs,omitempty"`
}

// Ints builds integer attributes from key, value pairs; a value is an int or an []int
// (Ints("dim", 0, "sizes", []int{2, 2})).
func Ints(kv ...any) Attrs {
	a := Attrs{Ints: map[string][]int{}}
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case int:
			a.Ints[kv[i].(string)] = []int{v}
		case []int:
			a.Ints[kv[i].(string)] = v
		default:
			panic(fmt.Sprintf("ir.Ints: value of %v is a %T, want int or []int", kv[i], v))
		}
	}
	return a
}

// Int is the scalar integer attribute k (Validate has checked it is present).
func (a Attrs) Int(k string) int { return a.Ints[k][0] }

// IntList is the integer-list attribute k.
func (a Attrs) IntList(k string) []int { return a.Ints[k] }

// Float is the float attribute k.
func (a Attrs) Float(k string) float64 { return a.Floats[k] }

// Str is the string attribute k.
func (a Attrs) Str(k string) string { return a.Strs[k] }

// Group is a communicator: a name (tp, pp, dp, embedding, …) and its global ranks in
// group-rank order. Two groups are the same communicator iff name and ranks are equal.
type Group struct {
	Name  string `json:"name"`
	Ranks []int  `json:"ranks"`
}

// Index is r's group rank, or -1.
func (g *Group) Index(r int) int { return slices.Index(g.Ranks, r) }

// Key identifies the communicator.
func (g *Group) Key() string { return fmt.Sprintf("%s%v", g.Name, g.Ranks) }

func (g *Group) String() string { return g.Key() }

// Transfer is one send or receive of a p2p batch.
type Transfer struct {
	Send  bool   `json:"send"` // false = receive
	Peer  int    `json:"peer"`
	Sym   string `json:"sym"`   // the symbol sent, or the symbol the received tensor is bound to
	Shape []int  `json:"shape"` // the tensor's shape: both sides must agree
}

func (t Transfer) String() string {
	if t.Send {
		return fmt.Sprintf("send %s%v to %d", t.Sym, t.Shape, t.Peer)
	}
	return fmt.Sprintf("recv %s%v from %d", t.Sym, t.Shape, t.Peer)
}

// Tag says how a traced symbol appears in the trace (trace.TensorMeta's fields).
type Tag struct {
	Key   string         `json:"key"`  // unique per rank
	Name  string         `json:"name"` // logical name
	Kind  string         `json:"kind"` // trace.Kind
	Order int            `json:"order"`
	Place string         `json:"place,omitempty"`
	Shape []int          `json:"shape,omitempty"` // global shape
	Coord map[string]int `json:"coord,omitempty"`
}

// Marshal renders p as indented JSON with sorted map keys (deterministic bytes).
func (p *Program) Marshal() ([]byte, error) { return json.MarshalIndent(p, "", " ") }

// Unmarshal reads and validates a program.
func Unmarshal(b []byte) (*Program, error) {
	var p Program
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("ir: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// String is a one-line rendering of an op for messages: "all_reduce(sum) tp[0 1] x#3 -> y#4".
func (o *Op) String() string {
	s := o.Op
	if r, ok := o.Attr.Strs["reduce"]; ok {
		s += "(" + r + ")"
	}
	if d, ok := o.Attr.Ints["dim"]; ok {
		s += fmt.Sprintf("(dim=%d)", d[0])
	}
	if o.Group != nil {
		s += " " + o.Group.Key()
	}
	for _, t := range o.P2P {
		s += " [" + t.String() + "]"
	}
	if len(o.In) > 0 {
		s += fmt.Sprintf(" %v", o.In)
	}
	if len(o.Out) > 0 {
		s += fmt.Sprintf(" -> %v", o.Out)
	}
	if o.Role != "" {
		s += " (" + o.Role + ")"
	}
	return s
}
