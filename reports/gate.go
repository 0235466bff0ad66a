package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/buildinfo"
)

// Gate renders the gate's report (spcheck check) in format f, one of GateFormats. Timings appear
// only in the text footer and the JUnit time attributes; everything else depends only on the
// cases' outcomes.
func Gate(w io.Writer, g *bugs.GateReport, f Format) error {
	return writers{
		FormatText:     func(w io.Writer) error { return gateText(w, g) },
		FormatMarkdown: func(w io.Writer) error { return gateMarkdown(w, g) },
		FormatJSON:     func(w io.Writer) error { return gateJSON(w, g) },
		FormatJUnit:    func(w io.Writer) error { return gateJUnit(w, g) },
	}.write(w, f, "check report", GateFormats)
}

var kindTitle = map[string]string{
	bugs.CaseCorrect: "Correct plans (must verify)",
	bugs.CaseBug:     "Bug catalogue (each must be detected with its expected diagnosis)",
	bugs.CaseFixed:   "Fixed forms (bug switched off, same plan: must verify)",
	bugs.CaseExample: "Worked examples (hand-worked numbers of the upstream bugs)",
}

var caseKinds = []string{bugs.CaseCorrect, bugs.CaseBug, bugs.CaseFixed, bugs.CaseExample}

func mark(pass bool) string {
	if pass {
		return "ok"
	}
	return "FAIL"
}

// caseRow is a case's row in the table of its kind.
func caseRow(c bugs.Case) []string {
	switch c.Kind {
	case bugs.CaseCorrect:
		return []string{mark(c.Pass), c.Name, c.Detail}
	case bugs.CaseBug:
		return []string{mark(c.Pass), c.Name, c.Verdict, c.First, c.Signature}
	case bugs.CaseFixed:
		return []string{mark(c.Pass), c.Name, c.Verdict, c.Detail}
	}
	return []string{mark(c.Pass), c.Name, c.Verdict}
}

var caseHeader = map[string][]string{
	bugs.CaseCorrect: {"", "plan", "outcome"},
	bugs.CaseBug:     {"", "bug", "verdict", "first divergence", "signature"},
	bugs.CaseFixed:   {"", "bug off", "verdict", "outcome"},
	bugs.CaseExample: {"", "example", "numbers"},
}

func gateText(w io.Writer, g *bugs.GateReport) error {
	var b strings.Builder
	fmt.Fprintln(&b, g.Summary())
	for _, k := range caseKinds {
		fmt.Fprintf(&b, "\n%s\n", kindTitle[k])
		var rows [][]string
		for _, c := range g.Cases {
			if c.Kind == k {
				rows = append(rows, caseRow(c))
			}
		}
		if err := table(&b, caseHeader[k], rows); err != nil {
			return err
		}
	}
	if g.Failed() > 0 {
		fmt.Fprintln(&b, "\nfailures:")
		for _, c := range g.Cases {
			if !c.Pass {
				fmt.Fprintf(&b, "- %s %s: %s\n", c.Kind, c.Name, strings.Join(c.Problems, "; "))
				if c.Detail != "" {
					fmt.Fprintf(&b, "    saw: %s\n", c.Detail)
				}
				if c.Command != "" {
					fmt.Fprintf(&b, "    reproduce: %s\n", c.Command)
				}
			}
		}
	}
	fmt.Fprintf(&b, "\n%d checks in %s on %d CPU(s); %s\n", len(g.Cases), g.Elapsed.Round(time.Millisecond), g.Procs, versionLine())
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func gateMarkdown(w io.Writer, g *bugs.GateReport) error {
	var b strings.Builder
	status := "✅"
	if !g.OK() {
		status = "❌"
	}
	fmt.Fprintf(&b, "## %s %s\n", status, strings.TrimPrefix(g.Summary(), "spcheck check: "))
	for _, k := range caseKinds {
		fmt.Fprintf(&b, "\n### %s\n\n", kindTitle[k])
		h := caseHeader[k]
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(append([]string{"result"}, h[1:]...), " | "), strings.Repeat("---|", len(h)))
		for _, c := range g.Cases {
			if c.Kind != k {
				continue
			}
			row := caseRow(c)
			cells := []string{map[bool]string{true: "✅", false: "❌"}[c.Pass]}
			for i, s := range row[1:] {
				if i == 0 || (k == bugs.CaseBug && i == 2) {
					s = "`" + s + "`"
				}
				cells = append(cells, mdCell(s))
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	if g.Failed() > 0 {
		fmt.Fprintf(&b, "\n### Failures\n\n")
		for _, c := range g.Cases {
			if !c.Pass {
				fmt.Fprintf(&b, "- **%s `%s`**: %s", c.Kind, c.Name, mdCell(strings.Join(c.Problems, "; ")))
				if c.Command != "" {
					fmt.Fprintf(&b, " — reproduce: `%s`", c.Command)
				}
				b.WriteString("\n")
			}
		}
	}
	fmt.Fprintf(&b, "\n<sub>%s</sub>\n", versionLine())
	_, err := io.WriteString(w, b.String())
	return err
}

type jsonCase struct {
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Plan      string   `json:"plan,omitempty"`
	Pass      bool     `json:"pass"`
	Verdict   string   `json:"verdict,omitempty"`
	First     string   `json:"first_divergence,omitempty"`
	Signature string   `json:"signature,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Problems  []string `json:"problems,omitempty"`
	Command   string   `json:"command,omitempty"`
}

func gateJSON(w io.Writer, g *bugs.GateReport) error {
	doc := struct {
		Format  string     `json:"format"`
		Version string     `json:"spcheck_version"`
		Pass    bool       `json:"pass"`
		Cases   []jsonCase `json:"cases"`
	}{Format: "spcheck-check/1", Version: buildinfo.Version(), Pass: g.OK()}
	for _, c := range g.Cases {
		doc.Cases = append(doc.Cases, jsonCase{c.Kind, c.Name, c.Plan, c.Pass, c.Verdict, c.First, c.Signature, c.Detail, c.Problems, c.Command})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// gateJUnit renders one test suite per case kind, one test case per check (class
// spcheck.check.<kind>), so CI lists every bug by name.
func gateJUnit(w io.Writer, g *bugs.GateReport) error {
	doc := JUnitSuites{Name: "spcheck check", Time: seconds(g.Elapsed)}
	for i, k := range caseKinds {
		s := JUnitSuite{Name: kindTitle[k]}
		if i == 0 {
			s.Properties = []JUnitProperty{{"spcheck.version", buildinfo.Version()}}
		}
		for _, c := range g.Cases {
			if c.Kind != k {
				continue
			}
			jc := JUnitCase{ClassName: "spcheck.check." + k, Name: c.Name, Time: seconds(c.Elapsed)}
			out := fmt.Sprintf("verdict: %s\n", c.Verdict)
			if c.First != "" {
				out += fmt.Sprintf("first divergence: %s (%s)\n", c.First, c.Signature)
			}
			if c.Plan != "" {
				out += fmt.Sprintf("plan: %s\n", c.Plan)
			}
			if c.Detail != "" {
				out += c.Detail + "\n"
			}
			if c.Command != "" {
				out += "reproduce: " + c.Command + "\n"
			}
			if c.Pass {
				jc.SystemOut = out
			} else {
				jc.Failure = &JUnitMessage{Type: c.Kind, Message: strings.Join(c.Problems, "; "), Body: out}
				s.Failures++
			}
			s.Cases = append(s.Cases, jc)
		}
		s.Tests = len(s.Cases)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Suites = append(doc.Suites, s)
	}
	return WriteJUnit(w, doc)
}
