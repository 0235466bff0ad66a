package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

func TestFromBuildInfo(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, c := range scenario.Cases(t, []struct {
		main     string
		settings []debug.BuildSetting
		want     string
		reason   string
	}{
		{main: "v1.2.3", settings: []debug.BuildSetting{rev}, want: "v1.2.3", reason: "go install …@v1.2.3 records the module version"},
		{main: "(devel)", settings: []debug.BuildSetting{rev}, want: "devel 0123456789ab", reason: "a build from a clean clone records its revision"},
		{main: "(devel)", settings: []debug.BuildSetting{rev, dirty}, want: "devel 0123456789ab+dirty", reason: "local changes are said"},
		{main: "(devel)", want: "dev", reason: "go test and -buildvcs=false record nothing"},
	}) {
		bi := &debug.BuildInfo{Main: debug.Module{Version: c.main}, Settings: c.settings}
		if got := fromBuildInfo(bi); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.main, c.settings, got, c.want)
		}
	}
}
