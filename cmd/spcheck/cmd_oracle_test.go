package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/trace"
)

func TestOracleCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ref")
	var out, errb bytes.Buffer
	code := run([]string{"oracle", "--plan", "mtp=2,packed=4:3:5", "--tp", "2", "--out", dir}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "loss/total") {
		t.Errorf("output lacks the losses:\n%s", out.String())
	}
	tr, err := trace.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if m := tr.Files[0].Meta; m.World != 1 || m.Producer != "oracle" || !strings.Contains(m.Plan, "tp=2") || !strings.Contains(m.Plan, "packed=4:3:5") {
		t.Errorf("meta %+v", m)
	}
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		args   []string
		want   string
	}{
		{"no --out", []string{"oracle"}, "--out DIR is required"},
		{"invalid model", []string{"oracle", "--plan", "heads=3", "--out", dir}, "hidden must be a multiple of heads"},
		{"unknown key", []string{"oracle", "--plan", "bogus=1", "--out", dir}, "unknown plan key"},
		{"stray argument", []string{"oracle", "--out", dir, "tp=2"}, "unexpected argument"},
	}) {
		var o, e bytes.Buffer
		if code := run(tc.args, &o, &e); code != exitBadInput || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.reason, code, e.String(), exitBadInput, tc.want)
		}
	}
}
