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
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(stdout, "spcheck %s (trace format %s/%d, %s %s/%s)\n", v, trace.Format, trace.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
