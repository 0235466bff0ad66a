package serving

import "slices"

// Message is one msgsnd: the outputs one rank sent to its DP group's queue in one step (only
// requests with accepted tokens are listed).
type Message struct {
	Step, Rank int
	Entries    []Entry
}

// Entry is one request's accepted tokens in a message (accept_tokens[i][:accept_num[i]]).
type Entry struct {
	Request string
	Tokens  []int
}

// slotState is one rank's view of one batch slot: what seq_lens_decoder, stop_flags and the
// first-step flag hold in FastDeploy's share_inputs.
type slotState struct {
	arrived, launched, stopped bool
	pos                        int // tokens generated so far
	last                       int // the last token: the prompt's, then the last accepted one
}

type rankState struct {
	dp, tpRank int
	slots      []slotState // one per request of the DP group, in slot order
}

// rankStep is what one rank computed in one step.
type rankStep struct {
	slt, blk []int   // seq_lens_this_time, is_block_step per slot
	tokens   [][]int // accepted tokens per slot (nil when the slot did not launch)
}

// Sim is the decode loop of every rank of a TP × DP mesh, one Step at a time. It is
// deterministic: the same Config and the same sequence of calls give the same records.
type Sim struct {
	cfg      Config
	groups   [][]Request // per DP group, in slot order
	ranks    []rankState // by global rank
	step     int
	cached   []int // per DP group: the prediction step `step` will consume; -1 none
	queues   [][]Message
	launches []LaunchRecord
	replicas []ReplicaMismatch
	skipped  []SkippedUpdate
}

// New validates cfg and returns a loop at step 0.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reqs := cfg.Requests
	cfg.Requests = nil
	s := &Sim{cfg: cfg, groups: make([][]Request, cfg.DP), ranks: make([]rankState, cfg.TP*cfg.DP),
		cached: make([]int, cfg.DP), queues: make([][]Message, cfg.DP)}
	for r := range s.ranks {
		s.ranks[r] = rankState{dp: r / cfg.TP, tpRank: r % cfg.TP}
	}
	for i := range s.cached {
		s.cached[i] = -1
	}
	for _, r := range reqs {
		s.add(r)
	}
	return s, nil
}

// Insert schedules one more request; it must arrive no earlier than the next step. This is the
// hook for a stateful fuzz property (insert / step commands).
func (s *Sim) Insert(r Request) error {
	if r.Arrive < s.step {
		return &Error{"requests", "inserted request " + r.ID + " arrives before the current step"}
	}
	next := s.cfg
	next.Requests = append(slices.Clone(s.requests()), r)
	if err := next.Validate(); err != nil {
		return err
	}
	s.add(r)
	return nil
}

func (s *Sim) add(r Request) {
	s.groups[r.DP] = append(s.groups[r.DP], r)
	for i := range s.ranks {
		if s.ranks[i].dp == r.DP {
			s.ranks[i].slots = append(s.ranks[i].slots, slotState{})
		}
	}
}

// requests is every request in DP-group then slot order.
func (s *Sim) requests() []Request {
	var all []Request
	for _, g := range s.groups {
		all = append(all, g...)
	}
	return all
}

// StepIndex is the number of steps run so far.
func (s *Sim) StepIndex() int { return s.step }

// Done reports whether every request has arrived and stopped on its TP root.
func (s *Sim) Done() bool {
	for dp, g := range s.groups {
		root := s.ranks[dp*s.cfg.TP]
		for i, r := range g {
			if r.Arrive >= s.step || !root.slots[i].stopped {
				return false
			}
		}
	}
	return true
}

// StepCap bounds a run. From step T = the last arrival or block-window end on, every DP group
// that is not done has a live, unblocked request, and a correct TP root generates ≥ 1 token for
// it each step; so T + 1 + Σ MaxTokens steps suffice. A loop still running at the cap is stuck
// (a replica that stopped updating its state).
func (s *Sim) StepCap() int {
	t, tokens := 0, 0
	for _, r := range s.requests() {
		t = max(t, r.Arrive, r.BlockAt+r.BlockSteps)
		tokens += r.MaxTokens
	}
	return t + 1 + tokens
}

// Run runs cfg to completion (or to its step cap) and checks it.
func Run(cfg Config) (Report, error) {
	s, err := New(cfg)
	if err != nil {
		return Report{}, err
	}
	for limit := s.StepCap(); !s.Done() && s.step < limit; {
		s.Step()
	}
	return s.Report(), nil
}

// StepRecord is what one step launched, per DP group, as the group's TP root saw it.
type StepRecord struct {
	Step                         int
	SeqLensThisTime, IsBlockStep [][]int // by DP group, one entry per slot
}

// Step runs one decode step on every rank: schedule, launch and verify, replica check, TP
// broadcast of the outputs, next-launch prediction, gated emission, state update.
func (s *Sim) Step() StepRecord {
	s.schedule()
	outs := make([]rankStep, len(s.ranks))
	for r := range s.ranks {
		outs[r] = s.launch(&s.ranks[r])
	}
	rec := StepRecord{Step: s.step}
	for dp := range s.groups {
		root := dp * s.cfg.TP
		rec.SeqLensThisTime = append(rec.SeqLensThisTime, outs[root].slt)
		rec.IsBlockStep = append(rec.IsBlockStep, outs[root].blk)
		s.checkLaunch(dp, outs[root])
		for r := root + 1; r < root+s.cfg.TP; r++ {
			s.checkReplica(r, root, outs[r], outs[root])
			outs[r].tokens = outs[root].tokens // paddle.distributed.broadcast(accept_*, src=TP root)
		}
		// The overlapped runner predicts step n+1 before it post-processes step n.
		s.cached[dp] = s.cfg.Predict.PredictNextLaunch(s.cfg.K, outs[root].slt, outs[root].blk)
	}
	for r := range s.ranks {
		st := &s.ranks[r]
		emits := s.cfg.Gate.Emits(s.cfg.UseEP, s.cfg.TP, st.dp, st.tpRank)
		if emits {
			s.emit(r, outs[r])
		}
		if s.cfg.GateStateUpdates && !emits {
			s.skipped = append(s.skipped, SkippedUpdate{Step: s.step, Rank: r})
			continue
		}
		s.update(st, outs[r])
	}
	s.step++
	return rec
}

// schedule inserts this step's arrivals on every rank (the scheduler's decision is shared) and
// drops the cached prediction of a DP group that got one, as insert_tasks_v1 resets
// _cached_launch_token_num to -1.
func (s *Sim) schedule() {
	for dp, g := range s.groups {
		for i, req := range g {
			if req.Arrive != s.step {
				continue
			}
			s.cached[dp] = -1
			for r := dp * s.cfg.TP; r < (dp+1)*s.cfg.TP; r++ {
				s.ranks[r].slots[i] = slotState{arrived: true, last: PromptToken(s.cfg.Seed, s.cfg.Vocab, req.ID)}
			}
		}
	}
}

func blocked(r Request, step int) bool {
	return r.BlockSteps > 0 && step >= r.BlockAt && step < r.BlockAt+r.BlockSteps
}

// launch is one rank's forward + verify from its own state.
func (s *Sim) launch(st *rankState) rankStep {
	g := s.groups[st.dp]
	out := rankStep{slt: make([]int, len(g)), blk: make([]int, len(g)), tokens: make([][]int, len(g))}
	for i, req := range g {
		sl := st.slots[i]
		switch {
		case !sl.arrived || sl.stopped:
		case blocked(req, s.step):
			out.blk[i] = 1
		default:
			n := s.cfg.LaunchTokens()
			if !sl.launched {
				n = s.cfg.firstLaunch(req)
			}
			out.slt[i] = n
			out.tokens[i] = s.cfg.Verify(req.ID, sl.pos, sl.last, n, req.MaxTokens)
		}
	}
	return out
}

func (s *Sim) emit(rank int, out rankStep) {
	st := s.ranks[rank]
	m := Message{Step: s.step, Rank: rank}
	for i, toks := range out.tokens {
		if len(toks) > 0 {
			m.Entries = append(m.Entries, Entry{Request: s.groups[st.dp][i].ID, Tokens: toks})
		}
	}
	if len(m.Entries) > 0 {
		s.queues[st.dp] = append(s.queues[st.dp], m)
	}
}

// update is speculate_update: advance each launched slot by its accepted tokens, stop it at
// its budget.
func (s *Sim) update(st *rankState, out rankStep) {
	for i := range st.slots {
		if out.slt[i] == 0 {
			continue
		}
		sl := &st.slots[i]
		sl.launched = true
		if toks := out.tokens[i]; len(toks) > 0 {
			sl.pos += len(toks)
			sl.last = toks[len(toks)-1]
		}
		if sl.pos >= s.groups[st.dp][i].MaxTokens {
			sl.stopped = true
		}
	}
}

// checkLaunch compares the prediction this step consumes with what it launches.
func (s *Sim) checkLaunch(dp int, root rankStep) {
	actual := 0
	for _, n := range root.slt {
		actual += n
	}
	pred := s.cached[dp]
	if pred <= 0 {
		pred = -1 // _resolve_current_launch_token_num syncs on a missing or non-positive cache
	}
	if pred < 0 && actual == 0 {
		return
	}
	rec := LaunchRecord{Step: s.step, DP: dp, Predicted: pred, Actual: actual}
	if pred >= 0 && pred < actual {
		rec.Cut = s.cut(dp, root.slt, pred)
	}
	s.launches = append(s.launches, rec)
}

// cut lists the tokens pre_process drops when it packs only pred tokens of the ragged batch
// (slots in order).
func (s *Sim) cut(dp int, slt []int, pred int) []Cut {
	var cuts []Cut
	packed := 0
	for i, n := range slt {
		kept := min(max(pred-packed, 0), n)
		if n > kept {
			cuts = append(cuts, Cut{Request: s.groups[dp][i].ID, Tokens: n - kept})
		}
		packed += n
	}
	return cuts
}

// checkReplica compares a TP rank's state and outputs with its TP root's before the broadcast
// overwrites them.
func (s *Sim) checkReplica(rank, root int, got, want rankStep) {
	gs, ws := s.ranks[rank].slots, s.ranks[root].slots
	for i, req := range s.groups[s.ranks[rank].dp] {
		pairs := []fieldPair{
			{"seq_lens_decoder", gs[i].pos, ws[i].pos},
			{"last_token", gs[i].last, ws[i].last},
			{"stop_flags", b2i(gs[i].stopped), b2i(ws[i].stopped)},
			{"seq_lens_this_time", got.slt[i], want.slt[i]},
			{"is_block_step", got.blk[i], want.blk[i]},
			{"accept_num", len(got.tokens[i]), len(want.tokens[i])},
		}
		for j := range min(len(got.tokens[i]), len(want.tokens[i])) {
			pairs = append(pairs, fieldPair{"accept_tokens", got.tokens[i][j], want.tokens[i][j]})
		}
		for _, p := range pairs {
			if p.got != p.want {
				s.replicas = append(s.replicas, ReplicaMismatch{Step: s.step, Rank: rank, Root: root,
					Request: req.ID, Field: p.field, Got: p.got, Want: p.want})
				return
			}
		}
	}
}

// fieldPair is one replicated field as a rank and its TP root hold it.
type fieldPair struct {
	field     string
	got, want int
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
