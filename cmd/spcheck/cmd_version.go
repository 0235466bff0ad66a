package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/trace"
)

func init() {
	register(&command{name: "version", summary: "print the version, trace format and Go runtime", run: runVersion})
}

// runVersion prints buildinfo.Version: set it at link time with
// -ldflags "-X github.com/spcheck/spcheck/internal/buildinfo.version=v1.2.3".
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintf(stdout, "spcheck %s (trace format %s/%d, %s %s/%s)\n", buildinfo.Version(), trace.Format, trace.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
