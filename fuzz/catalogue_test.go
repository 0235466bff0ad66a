package fuzz_test

import (
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/fuzz"
	"github.com/spcheck/spcheck/serving"
)

// TestServingBugsAreTheCatalogues: the serving bugs fuzzed here are the catalogue's, by name
// and by the switch they turn on.
func TestServingBugsAreTheCatalogues(t *testing.T) {
	var names []string
	for _, b := range bugs.All() {
		if b.Domain != bugs.Serving {
			continue
		}
		names = append(names, b.Name)
		mine, ok := fuzz.LookupServingBug(b.Name)
		if !ok {
			t.Errorf("catalogue serving bug %s is not fuzzed", b.Name)
			continue
		}
		want := b.Config()
		var got serving.Config
		fuzz.FixedServing(&got)
		mine.Variant(&got)
		if got.Gate != want.Gate || got.Predict != want.Predict || got.GateStateUpdates != want.GateStateUpdates {
			t.Errorf("%s: switches gate=%s predict=%s updates=%v, the catalogue's %s/%s/%v", b.Name,
				got.Gate, got.Predict, got.GateStateUpdates, want.Gate, want.Predict, want.GateStateUpdates)
		}
	}
	if len(names) != len(fuzz.ServingBugs) {
		t.Errorf("catalogue serving bugs %v, fuzzed %d", names, len(fuzz.ServingBugs))
	}
}
