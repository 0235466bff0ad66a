package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spcheck/spcheck/trace"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise the module's.
var version = "dev"

func init() {
	register(&command{name: "version", summary: "print the version, trace format and Go runtime", run: runVersion})
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintf(stdout, "spcheck %s (trace format %s/%d, %s %s/%s)\n", buildVersion(), trace.Format, trace.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// buildVersion is the version this binary was built as: -ldflags "-X main.version=…" if set,
// else the module version go install recorded (v1.2.3 or a pseudo-version), else the VCS
// revision a build from a clone recorded ("devel 1a2b3c4d5e6f", "+dirty" with local changes),
// else "dev" (go test, go run without VCS information).
func buildVersion() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" {
		return "devel " + rev + dirty
	}
	return version
}
