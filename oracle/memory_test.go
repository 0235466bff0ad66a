package oracle

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/plan"
)

// TestMemoryEstimateIsExact: the estimate's records are exactly the bytes of the tensors Run
// records (float64), and its encoded size exactly the trace's data section, on models that
// exercise every term (MTP depths, tied and untied heads, packed sequences, sizes that differ
// in every dimension).
func TestMemoryEstimateIsExact(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason, plan string
	}{
		{"no MTP, untied, fp64", "vocab=37,hidden=8,heads=2,layers=2,ffn=10,seq=5,batch=3,mtp=0"},
		{"two depths, packed, tied, bf16", "vocab=41,hidden=12,heads=3,layers=1,ffn=14,seq=9,batch=2,mtp=2,packed=4:5,tied=true,dtype=bf16"},
		{"one depth, fp32", "vocab=29,hidden=16,heads=4,layers=3,ffn=20,seq=7,batch=1,mtp=1,dtype=fp32"},
	}) {
		p, err := plan.Parse(tc.plan)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(p.Model)
		if err != nil {
			t.Fatal(err)
		}
		var records int64
		for _, r := range res.Records {
			records += 8 * int64(len(r.Tensor.Data))
		}
		est := EstimateMemory(p)
		if est.Records() != records {
			t.Errorf("%s: estimate %d bytes of records, Run recorded %d", tc.reason, est.Records(), records)
		}
		w, err := TraceWriter(p, res)
		if err != nil {
			t.Fatal(err)
		}
		f, err := w.File("x")
		if err != nil {
			t.Fatal(err)
		}
		var encoded int64
		for _, e := range f.Entries {
			encoded += e.End - e.Begin
		}
		if est.Encoded != encoded {
			t.Errorf("%s: estimate %d encoded bytes, the trace has %d", tc.reason, est.Encoded, encoded)
		}
		m := p.Model
		if want := int64(8 * (m.Layers + m.MTP) * m.Batch * m.Heads * m.Seq * m.Seq); est.Attention != want {
			t.Errorf("%s: attention %d, want %d", tc.reason, est.Attention, want)
		}
	}
}

// TestMemoryRefusal: above the limit the oracle refuses before allocating, with a
// *MemoryError that names the plan, the estimate and the limit's source; below it the run
// goes. The limit comes from SPCHECK_MEMORY_LIMIT here, as a user would set it.
func TestMemoryRefusal(t *testing.T) {
	p, err := plan.Parse("vocab=37,hidden=8,heads=2,layers=2,ffn=10,seq=5,batch=3,mtp=1")
	if err != nil {
		t.Fatal(err)
	}
	need := EstimateMemory(p).Run()
	t.Setenv("SPCHECK_MEMORY_LIMIT", "1K")
	_, err = Run(p.Model)
	var me *MemoryError
	if !errors.As(err, &me) {
		t.Fatalf("Run under a 1 KiB limit: %v, want a *MemoryError", err)
	}
	for _, part := range []string{"hidden=8", "needs about", "SPCHECK_MEMORY_LIMIT", "reduce seq"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message lacks %q: %s", part, err)
		}
	}
	if me.Limit != 1024 || me.Need.Run() != need {
		t.Errorf("limit %d need %d, want 1024 and %d", me.Limit, me.Need.Run(), need)
	}
	if err := WriteTrace(t.TempDir(), p); !errors.As(err, &me) {
		t.Errorf("WriteTrace under the limit: %v", err)
	}
	f := EstimateMemory(p)
	t.Setenv("SPCHECK_MEMORY_LIMIT", strconv.FormatInt(f.Run()+f.Encoded/2, 10))
	if _, err := Run(p.Model); err != nil {
		t.Errorf("with room for the run: %v", err)
	}
	if err := CheckMemory(p, true); !errors.As(err, &me) || !me.InMemoryTrace || !strings.Contains(err.Error(), "in-memory trace") {
		t.Errorf("no room for the in-memory trace too: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason, in string
		want       int64
		bad        bool
	}{
		{"plain bytes", "4096", 4096, false},
		{"binary suffixes", "64K", 64 << 10, false},
		{"fractions and a B", "1.5GB", 3 << 29, false},
		{"lower case", "2t", 2 << 40, false},
		{"not a number", "lots", 0, true},
		{"negative", "-1", 0, true},
	}) {
		got, err := parseBytes(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: parseBytes(%q) = %d, %v", tc.reason, tc.in, got, err)
		}
	}
}
