package fuzz

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Progress intervals: a terminal's status line is redrawn often; a log (CI) gets one line now
// and then, so a long campaign shows it is alive without flooding the log.
const (
	liveInterval = 250 * time.Millisecond
	logInterval  = 15 * time.Second
	liveWidth    = 150 // the status line is cut to this many characters
)

func (c *campaign) describe() string {
	switch {
	case c.cfg.Bug == "":
		return "the correct simulator (equivalence, algebra, serving)"
	case c.cfg.kindOf(0) == PropServing:
		return "serving bug " + c.cfg.Bug
	case c.cfg.Blind:
		return "bug " + c.cfg.Bug + " (blind: plans drawn as for the correct simulator)"
	}
	return "bug " + c.cfg.Bug
}

func (c *campaign) limit() string {
	var parts []string
	if len(c.cfg.Only) > 0 {
		return fmt.Sprintf("cases %v", c.cfg.Only)
	}
	if c.cfg.Count > 0 {
		parts = append(parts, fmt.Sprintf("cases 0…%d", c.cfg.Count-1))
	}
	if c.cfg.Budget > 0 {
		parts = append(parts, "budget "+c.cfg.Budget.String())
	}
	return strings.Join(parts, ", ")
}

func (c *campaign) logStart() {
	shard := ""
	if c.cfg.Shards > 1 {
		shard = fmt.Sprintf(", shard %d/%d", c.cfg.Shard, c.cfg.Shards)
	}
	fmt.Fprintf(c.cfg.Log, "fuzz: %s; seed %d%s, %s\n", c.describe(), c.cfg.Seed, shard, c.limit())
}

// status is the one-line state of the campaign.
func (c *campaign) status() string {
	el := time.Since(c.start)
	n, cases := c.plans.Load(), c.cases.Load()
	c.mu.Lock()
	found := len(c.found)
	c.mu.Unlock()
	return fmt.Sprintf("fuzz %5.1fs  %d cases  %d plans  %.0f plans/s  %d failing", el.Seconds(), cases, n,
		float64(n)/max(el.Seconds(), 1e-9), found)
}

// progress starts the status reports and returns the function that stops them.
func (c *campaign) progress() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	every := logInterval
	if c.cfg.Live {
		every = liveInterval
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if c.cfg.Live {
					fmt.Fprint(c.cfg.Log, "\r\x1b[K")
				}
				return
			case <-t.C:
				if c.cfg.Live {
					line := c.status() + "  │ " + c.current.Load().(string)
					fmt.Fprint(c.cfg.Log, "\r\x1b[K"+cut(line, liveWidth))
				} else {
					fmt.Fprintln(c.cfg.Log, c.status())
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
