package serving

import (
	"fmt"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// GateRow is one row of the gate table: a gate, who emitted, what each DP group's
// queue received in its first step with messages, and the EmitOnce verdict.
type GateRow struct {
	Label    string
	Emitters []int
	Queues   []string // by DP group: request ids per message, "(nothing)", or "-" (no such group)
	Verdict  string
}

// GateTable is the emission-gate table: each gate of FastDeploy #7172 (before, after, and the
// global-rank reading its review feared) under each deployment.
type GateTable struct {
	Queues int // DP queue columns
	Rows   []GateRow
}

// CompareGates runs base under the four deployments of the gate table: the old gate on pure TP
// (DP=1, only DP group 0's requests, use_ep off), then the old, new and global-rank gates under
// EP on base's full mesh. base's Gate and UseEP are ignored.
func CompareGates(base Config) (GateTable, error) {
	pureTP := base
	pureTP.DP, pureTP.UseEP, pureTP.Gate, pureTP.Requests = 1, false, GateOld, nil
	for _, r := range base.Requests {
		if r.DP == 0 {
			pureTP.Requests = append(pureTP.Requests, r)
		}
	}
	cfgs := []Config{pureTP}
	for _, g := range Gates {
		c := base
		c.UseEP, c.Gate = true, g
		cfgs = append(cfgs, c)
	}
	t := GateTable{Queues: base.DP}
	for _, c := range cfgs {
		rep, err := Run(c)
		if err != nil {
			return GateTable{}, err
		}
		t.Rows = append(t.Rows, rep.GateRow(base.DP))
	}
	return t, nil
}

// GateRow summarises the report as a gate-table row with queues columns.
func (r Report) GateRow(queues int) GateRow {
	row := GateRow{Label: r.Config.Gate.Label(r.Config.UseEP, r.Config.DP), Emitters: r.Emitters(),
		Verdict: r.EmitVerdict()}
	for dp := range queues {
		if dp >= len(r.Queues) {
			row.Queues = append(row.Queues, "-")
			continue
		}
		row.Queues = append(row.Queues, firstRound(r.Queues[dp].Messages))
	}
	return row
}

// firstRound lists the request ids of every message of the queue's first step with messages.
func firstRound(msgs []Message) string {
	var ids []string
	for _, m := range msgs {
		if m.Step != msgs[0].Step {
			break
		}
		for _, e := range m.Entries {
			ids = append(ids, e.Request)
		}
	}
	if len(ids) == 0 {
		return "(nothing)"
	}
	return strings.Join(ids, ",")
}

// String renders the table.
func (t GateTable) String() string {
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
	return renderTable(header, rows)
}

// LaunchTable renders the LaunchPrediction records: one row per step and DP group.
func (r Report) LaunchTable() string {
	var rows [][]string
	for _, l := range r.Launches {
		pred := "-"
		if l.Predicted >= 0 {
			pred = fmt.Sprint(l.Predicted)
		}
		rows = append(rows, []string{fmt.Sprint(l.Step), fmt.Sprint(l.DP), pred, fmt.Sprint(l.Actual),
			l.Verdict(), cutList(l.Cut)})
	}
	return renderTable([]string{"step", "dp", "predicted", "actual", "verdict", "dropped"}, rows)
}

// String is the report: the config, then one line per check, then the launch table.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "serving run %s: %d steps\n", r.Config, r.Steps)
	line := func(check string, ok bool, detail string) {
		verdict := "ok"
		if !ok {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "%-17s %s%s\n", check, verdict, detail)
	}
	detail := ""
	if !r.EmitOK() {
		detail = ": " + r.EmitVerdict()
	}
	line("EmitOnce", r.EmitOK(), detail)
	for _, q := range r.Queues {
		fmt.Fprintf(&b, "  queue DP%d (emitters %s):", q.DP, rankList(q.Emitters))
		for _, rr := range q.Requests {
			fmt.Fprintf(&b, " %s", requestDetail(rr))
		}
		b.WriteString("\n")
	}
	detail = ""
	if n := len(r.Replicas); n > 0 {
		m := r.Replicas[0]
		detail = fmt.Sprintf(": step %d r%d vs TP root r%d: %s %s = %d, root has %d (%d rank-steps differ)",
			m.Step, m.Rank, m.Root, m.Request, m.Field, m.Got, m.Want, n)
	}
	line("ReplicaIdentity", len(r.Replicas) == 0, detail)
	detail = ""
	if n := len(r.Skipped); n > 0 {
		detail = fmt.Sprintf(": state updates skipped by the gate on %s (%d rank-steps, first at step %d)",
			rankList(skippedRanks(r.Skipped)), n, r.Skipped[0].Step)
	}
	line("GateOnlyEmission", len(r.Skipped) == 0, detail)
	detail = ""
	for _, l := range r.UnderPredicted() {
		detail += fmt.Sprintf("; step %d DP%d: predicted %d, actual %d (%s, drops %s)",
			l.Step, l.DP, l.Predicted, l.Actual, l.Verdict(), cutList(l.Cut))
	}
	line("LaunchPrediction", r.LaunchOK(), strings.Replace(detail, ";", ":", 1))
	if len(r.Unfinished) > 0 {
		fmt.Fprintf(&b, "unfinished after %d steps: %s\n", r.Steps, strings.Join(r.Unfinished, ","))
	}
	b.WriteString(r.LaunchTable())
	return b.String()
}

func requestDetail(rr RequestResult) string {
	switch rr.Verdict {
	case EmitDuplicated:
		return fmt.Sprintf("%s duplicated x%d (%d tokens for %d)", rr.ID, rr.Copies, len(rr.Received), len(rr.Expected))
	case EmitWrong:
		return fmt.Sprintf("%s wrong at token %d", rr.ID, rr.Index)
	case EmitIncomplete:
		return fmt.Sprintf("%s incomplete (%d of %d tokens)", rr.ID, len(rr.Received), len(rr.Expected))
	}
	return rr.ID + " " + string(rr.Verdict)
}

func skippedRanks(s []SkippedUpdate) []int {
	var out []int
	for _, u := range s {
		if !contains(out, u.Rank) {
			out = append(out, u.Rank)
		}
	}
	slices.Sort(out)
	return out
}

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

func cutList(cuts []Cut) string {
	if len(cuts) == 0 {
		return "-"
	}
	parts := make([]string, len(cuts))
	for i, c := range cuts {
		parts[i] = fmt.Sprintf("%s:%d", c.Request, c.Tokens)
	}
	return strings.Join(parts, ",")
}

func renderTable(header []string, rows [][]string) string {
	var b strings.Builder
	t := tablewriter.NewTable(&b, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(header)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			panic(err) // a []string row into a strings.Builder cannot fail
		}
	}
	if err := t.Render(); err != nil {
		panic(err)
	}
	return b.String()
}
