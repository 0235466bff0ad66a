package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/verify"
)

// JUnitSuites is a JUnit XML document; other packages' gates (bugs.Gate) render into it too.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr,omitempty"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one test suite.
type JUnitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Properties []JUnitProperty `xml:"properties>property"`
	Cases      []JUnitCase     `xml:"testcase"`
}

// JUnitProperty is a suite property.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one test case.
type JUnitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitMessage `xml:"failure"`
	Skipped   *JUnitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitMessage is a failure or skip message.
type JUnitMessage struct {
	Type    string `xml:"type,attr,omitempty"`
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes doc as indented XML with its header.
func WriteJUnit(w io.Writer, doc JUnitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// JUnit renders r as JUnit XML grouped so that a CI test view shows the roots first: suite
// "roots" holds one test case per root of the divergence (the first divergence) and per failure
// that is not a consequence of it (shape mismatches, missing or extra tensors); suite
// "consequences" holds the failures that follow from the roots; suite "passing" is one test case
// listing every tensor within tolerance. A failure's body holds its numbers, its block table and
// the command that reproduces it.
func JUnit(w io.Writer, r *verify.Report) error {
	props := []JUnitProperty{
		{"reference", traceLine(r.Ref)}, {"candidate", traceLine(r.Cand)},
		{"reference.plan", r.Ref.Plan}, {"reference.seed", fmt.Sprint(r.Ref.Seed)},
		{"candidate.plan", r.Cand.Plan}, {"candidate.seed", fmt.Sprint(r.Cand.Seed)},
		{"command", r.Command}, {"verdict", headline(r)}, {"spcheck.version", buildinfo.Version()},
	}
	for _, sn := range r.Sentences() {
		props = append(props, JUnitProperty{"explanation", sn})
	}
	for i, l := range ruleLines(r) {
		props = append(props, JUnitProperty{fmt.Sprintf("rule.%d", i+1), l})
	}
	repro := strings.Join(r.Reproduce(), "\n")
	base := fmt.Sprintf("spcheck compare %s vs %s", r.Ref.Dir, r.Cand.Dir)
	roots := JUnitSuite{Name: base + ": roots (where the divergence starts)", Properties: props}
	conseq := JUnitSuite{Name: base + ": consequences (failures that follow from the roots)"}
	pass := JUnitSuite{Name: base + ": passing tensors"}
	var passing []string
	for _, res := range r.Results {
		c := JUnitCase{ClassName: "spcheck." + string(res.Kind), Name: res.Name, Time: "0"}
		msg := fmt.Sprintf("%s%s: %s", res.Verdict, roleMark(res), oneLine(res))
		suite := &roots
		switch {
		case r.Failed(res):
			c.Failure = &JUnitMessage{Type: string(res.Verdict), Message: msg, Body: failureBody(res, repro)}
			if res.Role == verify.Consequence {
				suite = &conseq
			}
			suite.Failures++
		case res.Verdict == verify.Missing || res.Verdict == verify.Extra:
			c.Skipped = &JUnitMessage{Message: msg}
			suite.Skipped++
		default:
			passing = append(passing, fmt.Sprintf("%s: %s, ref md5 %s, cand md5 %s, max abs err %s", res.Name, res.Verdict, dash(res.RefMD5), dash(res.CandMD5), num(res.MaxAbs)))
			continue
		}
		suite.Cases = append(suite.Cases, c)
	}
	ignored := JUnitSuite{Name: base + ": ignored tensors (--ignore)"}
	for _, t := range r.Ignored {
		ignored.Cases = append(ignored.Cases, JUnitCase{ClassName: "spcheck." + string(t.Kind), Name: t.Name, Time: "0",
			Skipped: &JUnitMessage{Message: "ignored by --ignore '" + t.Pattern + "'"}})
		ignored.Skipped++
	}
	if len(passing) > 0 {
		pass.Cases = []JUnitCase{{ClassName: "spcheck.passing", Name: fmt.Sprintf("%s within tolerance", verify.Plural(len(passing), "tensor")),
			Time: "0", SystemOut: strings.Join(passing, "\n")}}
	}
	doc := JUnitSuites{Name: "spcheck"}
	for _, s := range []JUnitSuite{roots, conseq, pass, ignored} {
		if len(s.Cases) == 0 && s.Name != roots.Name {
			continue
		}
		s.Tests = len(s.Cases)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	return WriteJUnit(w, doc)
}

// failureBody is the plain-text explanation of one failing tensor.
func failureBody(res *verify.Result, repro string) string {
	var b bytes.Buffer
	p := &printer{w: &b}
	p.line("%s", firstLine(res))
	p.line("%s", detailLine(res))
	p.line("reference md5 %s, candidate md5 %s", dash(res.RefMD5), dash(res.CandMD5))
	for _, s := range append(signatureLines(res), replicaLines(res)...) {
		p.line("%s", s)
	}
	if d := res.Diagnosis; d != nil {
		p.line("blocks (%s):", diagnosisTitle(d))
		for _, row := range d.Rows {
			cells := make([]string, len(row.Blocks))
			for i, blk := range row.Blocks {
				cells[i] = blockCell(blk)
			}
			p.line("  rank %s %s: %s", rowLabel(row), row.Region, strings.Join(cells, " | "))
		}
		if l := lostLine(d); l != "" {
			p.line("%s", l)
		}
		for _, f := range d.Findings {
			p.line("- %s", f)
		}
	}
	if repro != "" {
		p.line("reproduce:\n%s", repro)
	}
	return b.String()
}
