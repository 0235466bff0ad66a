package serving

import (
	"slices"
	"strings"
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

// SkippedRanks are the ranks that skipped a state update, in rank order.
func (r Report) SkippedRanks() []int {
	var out []int
	for _, u := range r.Skipped {
		if !contains(out, u.Rank) {
			out = append(out, u.Rank)
		}
	}
	slices.Sort(out)
	return out
}
