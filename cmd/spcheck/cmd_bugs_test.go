package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
)

// TestBugsCommand lists every catalogue entry with its class and source.
func TestBugsCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"bugs", "-v"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// Lines wrap at reports.Width, continuing indented: unwrap them before looking.
	text := strings.Join(strings.Fields(out.String()), " ")
	for _, b := range bugs.All() {
		if !strings.Contains(text, b.Name+" ") || !strings.Contains(text, strings.Join(strings.Fields(b.Source), " ")) {
			t.Errorf("bugs lacks %s or its source", b.Name)
		}
	}
	if !strings.Contains(out.String(), "plan:  tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0") {
		t.Errorf("-v lacks the minimal plans:\n%s", out.String())
	}
}
