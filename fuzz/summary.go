package fuzz

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
)

// ReadSummary reads a summary file (written by reports.FuzzSummaryJSON); name is used in errors.
func ReadSummary(r io.Reader, name string) (*Summary, error) {
	var s Summary
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not a fuzz summary: %w", name, err)
	}
	if s.Shards < 1 || len(s.ShardsRun) == 0 {
		return nil, fmt.Errorf("%s: not a fuzz summary: no shards", name)
	}
	for _, i := range s.ShardsRun {
		if i < 0 || i >= s.Shards {
			return nil, fmt.Errorf("%s: shard %d of %d", name, i, s.Shards)
		}
	}
	return &s, nil
}

// Merge combines the summaries of shards of one campaign (same seed, bug, count and shard
// count; each shard once): cases add up, and the counterexamples are all kept, lowest case
// first. Missing lists the shards none of the summaries ran.
func Merge(sums []*Summary) (merged *Summary, missing []int, err error) {
	if len(sums) == 0 {
		return nil, nil, fmt.Errorf("nothing to merge")
	}
	first := sums[0]
	m := &Summary{Seed: first.Seed, Bug: first.Bug, Count: first.Count, Shards: first.Shards, Cases: map[string]int{}}
	seen := map[int]bool{}
	for k, s := range sums {
		if s.Seed != first.Seed || s.Bug != first.Bug || s.Count != first.Count || s.Shards != first.Shards {
			return nil, nil, fmt.Errorf("summary %d is of another campaign (seed %d, bug %q, count %d, %d shards; the first: seed %d, bug %q, count %d, %d shards)",
				k+1, s.Seed, s.Bug, s.Count, s.Shards, first.Seed, first.Bug, first.Count, first.Shards)
		}
		for _, i := range s.ShardsRun {
			if seen[i] {
				return nil, nil, fmt.Errorf("shard %d/%d appears twice", i, s.Shards)
			}
			seen[i] = true
			m.ShardsRun = append(m.ShardsRun, i)
		}
		for p, n := range s.Cases {
			m.Cases[p] += n
		}
		m.Discarded += s.Discarded
		m.CorpusRerun += s.CorpusRerun
		m.Seconds = max(m.Seconds, s.Seconds) // shards run side by side
		m.Counterexamples = append(m.Counterexamples, s.Counterexamples...)
	}
	slices.Sort(m.ShardsRun)
	sort.SliceStable(m.Counterexamples, func(a, b int) bool { return m.Counterexamples[a].Case < m.Counterexamples[b].Case })
	for i := range m.Shards {
		if !seen[i] {
			missing = append(missing, i)
		}
	}
	return m, missing, nil
}
