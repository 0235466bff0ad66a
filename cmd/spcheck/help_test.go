package main

import (
	"strings"
	"testing"
)

// TestEveryCommandHelp: every command's --help says what it does, its exit codes and one
// example, and exits 0.
func TestEveryCommandHelp(t *testing.T) {
	for name := range commands {
		code, _, help := runCmd(name, "--help")
		if code != exitOK {
			t.Errorf("spcheck %s --help: exit %d", name, code)
		}
		for _, want := range []string{"Usage: spcheck " + name, "Exit", "Example:\n  spcheck " + name, "Flags:"} {
			if !strings.Contains(help, want) {
				t.Errorf("spcheck %s --help lacks %q:\n%s", name, want, help)
			}
		}
		if lines := strings.Split(help, "\n"); len(lines) < 6 {
			t.Errorf("spcheck %s --help says too little:\n%s", name, help)
		}
	}
}
