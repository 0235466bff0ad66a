package buildinfo

import "runtime/debug"

// version is set at link time: go build -ldflags "-X github.com/spcheck/spcheck/internal/buildinfo.version=v1.2.3".
var version = "dev"

// Version is the version this binary was built as: the link-time version if set, else the
// module version go install recorded (v1.2.3 or a pseudo-version), else the VCS revision a build
// from a clone recorded ("devel 1a2b3c4d5e6f", "+dirty" with local changes), else "dev" (go
// test, go run, or a build with -buildvcs=false).
func Version() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	return fromBuildInfo(bi)
}

// fromBuildInfo is Version's answer for a build without a link-time version.
func fromBuildInfo(bi *debug.BuildInfo) string {
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
