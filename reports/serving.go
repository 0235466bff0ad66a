package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/serving"
)

// GateTable renders the emission-gate table: one row per gate and deployment, who emitted,
// what each DP group's queue received in its first step with messages, and the verdict.
func GateTable(w io.Writer, t serving.GateTable) error {
	header := []string{"gate", "emitters"}
	for dp := range t.Queues {
		header = append(header, fmt.Sprintf("queue DP%d", dp))
	}
	header = append(header, "verdict")
	var rows [][]string
	for _, r := range t.Rows {
		row := append([]string{r.Label, rankList(r.Emitters)}, r.Queues...)
		rows = append(rows, append(row, r.Verdict))
	}
	return table(w, header, rows)
}

// LaunchTable renders a serving run's launch predictions: one row per step and DP group.
func LaunchTable(w io.Writer, r serving.Report) error {
	var rows [][]string
	for _, l := range r.Launches {
		pred := "-"
		if l.Predicted >= 0 {
			pred = fmt.Sprint(l.Predicted)
		}
		rows = append(rows, []string{fmt.Sprint(l.Step), fmt.Sprint(l.DP), pred, fmt.Sprint(l.Actual),
			l.Verdict(), cutList(l.Cut)})
	}
	return table(w, []string{"step", "dp", "predicted", "actual", "verdict", "dropped"}, rows)
}

// Serving renders a serving run: the config, one line per check, then the launch table.
func Serving(w io.Writer, r serving.Report) error {
	p := newText(w)
	p.line("serving run %s: %d steps", r.Config, r.Steps)
	check := func(name string, ok bool, detail string) {
		verdict := "ok"
		if !ok {
			verdict = "FAIL"
		}
		p.line("%-17s %s%s", name, verdict, detail)
	}
	detail := ""
	if !r.EmitOK() {
		detail = ": " + r.EmitVerdict()
	}
	check("EmitOnce", r.EmitOK(), detail)
	for _, q := range r.Queues {
		var b strings.Builder
		fmt.Fprintf(&b, "  queue DP%d (emitters %s):", q.DP, rankList(q.Emitters))
		for _, rr := range q.Requests {
			fmt.Fprintf(&b, " %s", requestDetail(rr))
		}
		p.line("%s", b.String())
	}
	detail = ""
	if n := len(r.Replicas); n > 0 {
		m := r.Replicas[0]
		detail = fmt.Sprintf(": step %d r%d vs TP root r%d: %s %s = %d, root has %d (%d rank-steps differ)",
			m.Step, m.Rank, m.Root, m.Request, m.Field, m.Got, m.Want, n)
	}
	check("ReplicaIdentity", len(r.Replicas) == 0, detail)
	detail = ""
	if n := len(r.Skipped); n > 0 {
		detail = fmt.Sprintf(": state updates skipped by the gate on %s (%d rank-steps, first at step %d)",
			rankList(r.SkippedRanks()), n, r.Skipped[0].Step)
	}
	check("GateOnlyEmission", len(r.Skipped) == 0, detail)
	detail = ""
	for _, l := range r.UnderPredicted() {
		detail += fmt.Sprintf("; step %d DP%d: predicted %d, actual %d (%s, drops %s)",
			l.Step, l.DP, l.Predicted, l.Actual, l.Verdict(), cutList(l.Cut))
	}
	check("LaunchPrediction", r.LaunchOK(), strings.Replace(detail, ";", ":", 1))
	if len(r.Unfinished) > 0 {
		p.line("unfinished after %d steps: %s", r.Steps, strings.Join(r.Unfinished, ","))
	}
	if p.err != nil {
		return p.err
	}
	return LaunchTable(w, r)
}

func requestDetail(rr serving.RequestResult) string {
	switch rr.Verdict {
	case serving.EmitDuplicated:
		return fmt.Sprintf("%s duplicated x%d (%d tokens for %d)", rr.ID, rr.Copies, len(rr.Received), len(rr.Expected))
	case serving.EmitWrong:
		return fmt.Sprintf("%s wrong at token %d", rr.ID, rr.Index)
	case serving.EmitIncomplete:
		return fmt.Sprintf("%s incomplete (%d of %d tokens)", rr.ID, len(rr.Received), len(rr.Expected))
	}
	return rr.ID + " " + string(rr.Verdict)
}

// rankList is "r0,r2", or "-" for none.
func rankList(ranks []int) string {
	if len(ranks) == 0 {
		return "-"
	}
	parts := make([]string, len(ranks))
	for i, r := range ranks {
		parts[i] = fmt.Sprintf("r%d", r)
	}
	return strings.Join(parts, ",")
}

// cutList is "A:2,B:1" (request:tokens dropped), or "-" for none.
func cutList(cuts []serving.Cut) string {
	if len(cuts) == 0 {
		return "-"
	}
	parts := make([]string, len(cuts))
	for i, c := range cuts {
		parts[i] = fmt.Sprintf("%s:%d", c.Request, c.Tokens)
	}
	return strings.Join(parts, ",")
}
