package serving

import (
	"slices"
	"testing"
)

// The gate table (FastDeploy #7172), cell by cell.
func TestSection32Table(t *testing.T) {
	tab, err := CompareGates(GateExample())
	if err != nil {
		t.Fatal(err)
	}
	want := []GateRow{
		{"old, use_ep=False (pure TP, DP=1)", []int{0}, []string{"A,B", "-"}, "ok"},
		{"old, use_ep=True", []int{0, 1, 2, 3}, []string{"A,B,A,B", "C,D,C,D"}, "duplicates x2"},
		{"new (rank_id = tp_rank)", []int{0, 2}, []string{"A,B", "C,D"}, "ok"},
		{"hypothetical (rank_id = global rank)", []int{0}, []string{"A,B", "(nothing)"}, "C,D lost"},
	}
	if len(tab.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(tab.Rows), len(want))
	}
	for i, w := range want {
		g := tab.Rows[i]
		if g.Label != w.Label || !slices.Equal(g.Emitters, w.Emitters) || !slices.Equal(g.Queues, w.Queues) || g.Verdict != w.Verdict {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}
