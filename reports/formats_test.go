package reports_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestJUnitGroupsRootsFirst: the JUnit output is XML that CI tools read; the first suite holds
// the roots and the other non-consequence failures, the next the consequences, the last one
// test case for every passing tensor; each failing tensor is one failed case with its verdict
// and the reproduce command, and the counts add up.
func TestJUnitGroupsRootsFirst(t *testing.T) {
	for _, s := range vt.All() {
		rep := report(t, s)
		var b bytes.Buffer
		if err := reports.JUnit(&b, rep); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Suites   []struct {
				Name  string `xml:"name,attr"`
				Cases []struct {
					Name    string `xml:"name,attr"`
					Failure *struct {
						Type string `xml:"type,attr"`
						Body string `xml:",chardata"`
					} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("%s: not XML: %v", s.Name, err)
		}
		var want [3][]string // roots, consequences, passing
		passing := 0
		for _, res := range rep.Results {
			switch {
			case rep.Failed(res) && res.Role == verify.Consequence:
				want[1] = append(want[1], res.Name)
			case rep.Failed(res) || res.Verdict == verify.Missing || res.Verdict == verify.Extra:
				want[0] = append(want[0], res.Name)
			default:
				passing++
			}
		}
		var got [3][]string
		failures, cases := 0, 0
		for _, suite := range doc.Suites {
			i := 0
			switch {
			case strings.HasSuffix(suite.Name, "passing tensors"):
				i = 2
			case strings.Contains(suite.Name, "consequences"):
				i = 1
			}
			for _, c := range suite.Cases {
				cases++
				got[i] = append(got[i], c.Name)
				if c.Failure == nil {
					continue
				}
				failures++
				res := result(rep, c.Name)
				if res == nil || c.Failure.Type != string(res.Verdict) || !strings.Contains(c.Failure.Body, "spcheck compare") {
					t.Errorf("%s: failure of %s lacks its verdict or the reproduce command: %+v", s.Name, c.Name, c.Failure)
				}
			}
		}
		if !strings.Contains(doc.Suites[0].Name, "roots") {
			t.Errorf("%s: first suite is %q, want the roots", s.Name, doc.Suites[0].Name)
		}
		if strings.Join(got[0], ",") != strings.Join(want[0], ",") || strings.Join(got[1], ",") != strings.Join(want[1], ",") {
			t.Errorf("%s: roots %v, consequences %v; want %v, %v", s.Name, got[0], got[1], want[0], want[1])
		}
		if (passing > 0) != (len(got[2]) == 1) {
			t.Errorf("%s: %d passing tensors, passing suite %v", s.Name, passing, got[2])
		}
		if doc.Tests != cases || doc.Failures != failures || failures != rep.Failures() {
			t.Errorf("%s: tests=%d failures=%d, want %d and %d (report: %d)", s.Name, doc.Tests, doc.Failures, cases, failures, rep.Failures())
		}
	}
}

func result(rep *verify.Report, name string) *verify.Result {
	for _, res := range rep.Results {
		if res.Name == name {
			return res
		}
	}
	return nil
}

// TestJSONSchema: the JSON parses, carries its schema name, and encodes NaN/Inf as strings.
func TestJSONSchema(t *testing.T) {
	rep := report(t, vt.NaNRank())
	var b bytes.Buffer
	if err := reports.JSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["schema"] != reports.Schema || doc["verified"] != false {
		t.Errorf("schema %v verified %v", doc["schema"], doc["verified"])
	}
	tensors := doc["tensors"].([]any)
	first := tensors[0].(map[string]any)
	if first["tol_units"] != "+Inf" || first["verdict"] != "non-finite" {
		t.Errorf("tol_units %v verdict %v, want \"+Inf\" and non-finite", first["tol_units"], first["verdict"])
	}
	if fd := doc["first_divergence"].([]any); len(fd) != 1 || fd[0] != "act/layers.1.attn.out" {
		t.Errorf("first_divergence %v", fd)
	}
}

// TestMarkdownEscapesPipes: a tensor name with | cannot break the Markdown table.
func TestMarkdownEscapesPipes(t *testing.T) {
	name := "act/a|b"
	ref := vt.Single("ref|dir", vt.Provenance{}).Add(0, "x", vt.Meta(name, trace.Activation, 1, ""), tensor.F64, []int{2}, 1, 2)
	cand := vt.Single("cand", vt.Provenance{}).Add(0, "x", vt.Meta(name, trace.Activation, 1, ""), tensor.F64, []int{2}, 1, 3)
	rep := report(t, vt.Scenario{Name: "pipes", Ref: ref, Cand: cand})
	var b bytes.Buffer
	if err := reports.Markdown(&b, rep, reports.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if strings.Contains(line, "act/a") && cells != 11 {
			t.Errorf("row %q has %d unescaped pipes, want 11", line, cells)
		}
	}
	if !strings.Contains(b.String(), "`act/a\\|b`") {
		t.Errorf("the name is not escaped:\n%s", b.String())
	}
}

// TestDiffReportsSeed001Symptom: two branches whose forward is the same but whose backward
// differs give "loss identical, all N gradient MD5s differ".
func TestDiffReportsSeed001Symptom(t *testing.T) {
	branch := func(name string, c float64) *vt.Ranks {
		r := vt.TP(name, 2, vt.Provenance{Producer: "paddle", Plan: "tp=2,pp=2,sp=megatron,partial_p2p=true"})
		r.AddAll("loss", vt.Meta("loss/main", trace.Loss, 1, ""), tensor.F32, nil, 3.25)
		for i, w := range []string{"grad/layers.0.w", "grad/layers.1.w", "grad/embedding"} {
			for rank := 0; rank < 2; rank++ {
				r.Add(rank, w, vt.Meta(w, trace.ParamGrad, 10+i, "tp=shard(0)"), tensor.F32, []int{2}, c*float64(rank+i), c*float64(2*rank+i+1))
			}
		}
		r.AddAll("act", vt.Meta("act/x", trace.Activation, 2, ""), tensor.F32, []int{1}, c)
		return r
	}
	a, err := branch("develop", 2).Trace()
	if err != nil {
		t.Fatal(err)
	}
	b, err := branch("unify", 1).Trace()
	if err != nil {
		t.Fatal(err)
	}
	d, err := verify.Diff(a, b, verify.Options{Command: "spcheck diff develop unify"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Summary(), "loss identical, all 3 gradient MD5s differ"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if d.Same() || len(d.Entries) != 4 {
		t.Errorf("same=%v with %d entries; activations must not be listed by default", d.Same(), len(d.Entries))
	}
	for _, f := range reports.DiffFormats {
		var out bytes.Buffer
		if err := reports.WriteDiff(&out, d, f); err != nil {
			t.Fatal(err)
		}
		golden(t, "diff-seed001."+extensions[f], out.Bytes())
	}
}
