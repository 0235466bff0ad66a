package serving

import (
	"fmt"
	"slices"
	"strings"
)

// EmitVerdict is what a request's queue received, compared with the oracle.
type EmitVerdict string

const (
	EmitOK         EmitVerdict = "ok"         // every oracle token, once, in order
	EmitDuplicated EmitVerdict = "duplicated" // right tokens, but some step's output sent Copies times
	EmitLost       EmitVerdict = "lost"       // nothing received
	EmitIncomplete EmitVerdict = "incomplete" // a strict prefix of the oracle's tokens
	EmitWrong      EmitVerdict = "wrong"      // a token differs from the oracle's (or extra tokens)
)

// RequestResult is the EmitOnce check of one request.
type RequestResult struct {
	ID       string
	DP       int
	Expected []int // the oracle's greedy tokens
	Received []int // every token the queue got for it, in queue order (duplicates included)
	Copies   int   // most messages that carried it in one step: 1 = exactly once
	Verdict  EmitVerdict
	Index    int // EmitWrong: first position whose token differs from the oracle's
}

// QueueResult is one DP group's message queue.
type QueueResult struct {
	DP       int
	Emitters []int // global ranks that sent to it
	Messages []Message
	Requests []RequestResult // the group's requests in slot order
}

// ReplicaMismatch is the first field in which a TP rank differs from its TP root in one step,
// before the broadcast makes their outputs identical (ReplicaIdentity).
type ReplicaMismatch struct {
	Step, Rank, Root int
	Request          string
	Field            string
	Got, Want        int
}

// SkippedUpdate is a rank that skipped its state update in a step because the gate returned
// early (the gate must only gate the emission).
type SkippedUpdate struct{ Step, Rank int }

// LaunchRecord is the LaunchPrediction check of one step of one DP group.
type LaunchRecord struct {
	Step, DP  int
	Predicted int // the cached prediction the step consumed; -1 = none, the runner synced
	Actual    int // Σ seq_lens_this_time the step launched
	Cut       []Cut
}

// Cut is what an under-predicted launch drops from one request: pre_process packs only the
// predicted number of tokens of the ragged batch.
type Cut struct {
	Request string
	Tokens  int
}

// Under reports an under-prediction: the packed input is truncated. Over-prediction only pads
// the launch with junk tokens (the safe direction), so it is listed but passes.
func (l LaunchRecord) Under() bool { return l.Predicted >= 0 && l.Predicted < l.Actual }

// Over reports an over-prediction (padding).
func (l LaunchRecord) Over() bool { return l.Predicted > l.Actual }

// Verdict is "exact", "under by N", "over by N (padding)" or "synced".
func (l LaunchRecord) Verdict() string {
	switch {
	case l.Predicted < 0:
		return "synced"
	case l.Under():
		return fmt.Sprintf("under by %d", l.Actual-l.Predicted)
	case l.Over():
		return fmt.Sprintf("over by %d (padding)", l.Predicted-l.Actual)
	}
	return "exact"
}

// Class is a diagnosis class a report can carry; a catalogue entry expects one.
type Class string

const (
	ClassDuplicated  Class = "emit-duplicated"
	ClassLost        Class = "emit-lost"
	ClassIncomplete  Class = "emit-incomplete"
	ClassWrong       Class = "emit-wrong"
	ClassReplica     Class = "replica-mismatch"
	ClassGatedUpdate Class = "state-update-gated"
	ClassUnder       Class = "launch-under-predicted"
	ClassUnfinished  Class = "unfinished"
)

// Report is a run's records and the four checks over them.
type Report struct {
	Config     Config // with every request, inserted ones included
	Steps      int
	Unfinished []string // requests still live on their TP root when the run stopped
	Queues     []QueueResult
	Replicas   []ReplicaMismatch
	Skipped    []SkippedUpdate
	Launches   []LaunchRecord
}

// Report checks what has run so far.
func (s *Sim) Report() Report {
	cfg := s.cfg
	cfg.Requests = s.requests()
	rep := Report{Config: cfg, Steps: s.step,
		Replicas: slices.Clone(s.replicas), Skipped: slices.Clone(s.skipped), Launches: slices.Clone(s.launches)}
	for dp, g := range s.groups {
		q := QueueResult{DP: dp, Messages: slices.Clone(s.queues[dp])}
		for _, m := range q.Messages {
			if !slices.Contains(q.Emitters, m.Rank) {
				q.Emitters = append(q.Emitters, m.Rank)
			}
		}
		slices.Sort(q.Emitters)
		root := s.ranks[dp*cfg.TP]
		for i, r := range g {
			q.Requests = append(q.Requests, checkRequest(cfg, r, q.Messages))
			if !root.slots[i].stopped {
				rep.Unfinished = append(rep.Unfinished, r.ID)
			}
		}
		rep.Queues = append(rep.Queues, q)
	}
	return rep
}

// checkRequest is EmitOnce for one request: collect its entries per step, count the copies,
// and compare one copy per step, concatenated, with the oracle.
func checkRequest(cfg Config, r Request, msgs []Message) RequestResult {
	res := RequestResult{ID: r.ID, DP: r.DP, Expected: GreedyTokens(cfg.Seed, cfg.Vocab, r.ID, r.MaxTokens)}
	var once []int
	copies, lastStep := 0, -1
	for _, m := range msgs {
		for _, e := range m.Entries {
			if e.Request != r.ID {
				continue
			}
			res.Received = append(res.Received, e.Tokens...)
			if m.Step != lastStep {
				once = append(once, e.Tokens...)
				lastStep, copies = m.Step, 0
			}
			copies++
			res.Copies = max(res.Copies, copies)
		}
	}
	diff := firstDiff(once, res.Expected)
	switch {
	case len(res.Received) == 0:
		res.Verdict = EmitLost
	case diff >= 0:
		res.Verdict, res.Index = EmitWrong, diff
	case len(once) < len(res.Expected):
		res.Verdict = EmitIncomplete
	case res.Copies > 1:
		res.Verdict = EmitDuplicated
	default:
		res.Verdict = EmitOK
	}
	return res
}

// firstDiff is the first index where got differs from want, counting extra tokens in got as a
// difference and a short got as none; -1 if got is a prefix of want.
func firstDiff(got, want []int) int {
	for i, t := range got {
		if i >= len(want) || t != want[i] {
			return i
		}
	}
	return -1
}

// EmitOK is the EmitOnce check: every request's tokens arrived exactly once and equal the oracle's.
func (r Report) EmitOK() bool {
	for _, q := range r.Queues {
		for _, rr := range q.Requests {
			if rr.Verdict != EmitOK {
				return false
			}
		}
	}
	return true
}

// LaunchOK is the LaunchPrediction check: no consumed prediction under-sized its launch.
func (r Report) LaunchOK() bool { return len(r.UnderPredicted()) == 0 }

// UnderPredicted lists the steps whose consumed prediction was below the actual launch.
func (r Report) UnderPredicted() []LaunchRecord {
	var out []LaunchRecord
	for _, l := range r.Launches {
		if l.Under() {
			out = append(out, l)
		}
	}
	return out
}

// OK reports whether every check passed and the run finished.
func (r Report) OK() bool { return len(r.Classes()) == 0 }

// Classes are the diagnosis classes of the failed checks, in a fixed order.
func (r Report) Classes() []Class {
	var out []Class
	add := func(c Class, bad bool) {
		if bad {
			out = append(out, c)
		}
	}
	verdicts := map[EmitVerdict]bool{}
	for _, q := range r.Queues {
		for _, rr := range q.Requests {
			verdicts[rr.Verdict] = true
		}
	}
	add(ClassDuplicated, verdicts[EmitDuplicated])
	add(ClassLost, verdicts[EmitLost])
	add(ClassIncomplete, verdicts[EmitIncomplete])
	add(ClassWrong, verdicts[EmitWrong])
	add(ClassReplica, len(r.Replicas) > 0)
	add(ClassGatedUpdate, len(r.Skipped) > 0)
	add(ClassUnder, !r.LaunchOK())
	add(ClassUnfinished, len(r.Unfinished) > 0)
	return out
}

// EmitVerdict is the one-line EmitOnce verdict of the gate table (GateTable): "ok",
// "duplicates x2", "C,D lost", … (parts joined by "; ").
func (r Report) EmitVerdict() string {
	var copies []int
	byVerdict := map[EmitVerdict][]string{}
	for _, q := range r.Queues {
		for _, rr := range q.Requests {
			byVerdict[rr.Verdict] = append(byVerdict[rr.Verdict], rr.ID)
			if rr.Verdict == EmitDuplicated && !slices.Contains(copies, rr.Copies) {
				copies = append(copies, rr.Copies)
			}
		}
	}
	slices.Sort(copies)
	var parts []string
	for _, c := range copies {
		parts = append(parts, fmt.Sprintf("duplicates x%d", c))
	}
	for _, v := range []EmitVerdict{EmitLost, EmitIncomplete, EmitWrong} {
		if ids := byVerdict[v]; len(ids) > 0 {
			parts = append(parts, strings.Join(ids, ",")+" "+string(v))
		}
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, "; ")
}

// Emitters are the global ranks that sent anything, ascending.
func (r Report) Emitters() []int {
	var out []int
	for _, q := range r.Queues {
		out = append(out, q.Emitters...)
	}
	slices.Sort(out)
	return out
}
