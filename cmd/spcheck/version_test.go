package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/trace"
)

// buildSpcheck builds this command with extra go build flags into dir.
func buildSpcheck(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "spcheck")
	args := append([]string{"build", "-o", bin}, flags...)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// TestVersionStamped builds spcheck as a release (a link-time version) and from this clone
// (-buildvcs=true, overriding GOFLAGS=-buildvcs=false), and checks that spcheck version, the
// producer version of the traces it writes and its reports carry the version.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	dir := t.TempDir()
	bin := buildSpcheck(t, dir, "-ldflags", "-X github.com/spcheck/spcheck/internal/buildinfo.version=v9.8.7-test")
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "spcheck v9.8.7-test (trace format ") {
		t.Fatalf("spcheck version: %q, %v", out, err)
	}
	ref := filepath.Join(dir, "ref")
	if out, err := exec.Command(bin, "oracle", "--out", ref).CombinedOutput(); err != nil {
		t.Fatalf("spcheck oracle: %v\n%s", err, out)
	}
	tr, err := trace.OpenDir(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if v := tr.Files[0].Meta.ProducerVersion; v != "v9.8.7-test" {
		t.Errorf("the oracle trace's producer_version is %q, want v9.8.7-test", v)
	}
	out, _ = exec.Command(bin, "compare", ref, ref, "--format", "json").Output()
	if !strings.Contains(string(out), `"spcheck_version": "v9.8.7-test"`) {
		t.Errorf("the JSON report does not name the version:\n%.400s", out)
	}

	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed: no VCS stamp to check")
	}
	dirs, err := exec.Command("git", "rev-parse", "--absolute-git-dir", "--git-common-dir").Output()
	if err != nil {
		t.Skip("not inside a git checkout: no VCS stamp to check")
	}
	if d := strings.Fields(string(dirs)); len(d) != 2 || filepath.Base(filepath.Dir(d[0])) == "worktrees" {
		// The go command stamps a checkout whose .git is a directory, not a linked worktree's file.
		t.Skipf("a git worktree (%s): go build does not stamp its revision", strings.TrimSpace(string(dirs)))
	}
	vcs := buildSpcheck(t, filepath.Join(dir, "vcs"), "-buildvcs=true")
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	// go ≥ 1.24 stamps a pseudo-version holding the revision; older ones leave "(devel)" and
	// the revision among the build settings.
	rev := string(head[:12])
	want := regexp.MustCompile(`^spcheck (devel |v0\.0\.0-[0-9]{14}-)` + rev + `(\+dirty)? \(`)
	out, err = exec.Command(vcs, "version").Output()
	if err != nil || !want.Match(out) {
		t.Errorf("spcheck version built from a clone: %q, %v; want the revision %s", out, err, rev)
	}
}
