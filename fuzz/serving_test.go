package fuzz

import (
	"testing"

	"github.com/leanovate/gopter"
	"github.com/spcheck/spcheck/serving"
)

func servingParams(seed int64, n int) *gopter.TestParameters {
	p := gopter.DefaultTestParametersWithSeed(seed)
	p.MinSuccessfulTests = n
	return p
}

func TestServingPropertyHoldsForTheFixedLoop(t *testing.T) {
	props := gopter.NewProperties(servingParams(1, 150))
	props.Property("fixed serving loop", ServingProperty(func(*serving.Config) {}, nil))
	props.TestingRun(t)
}

func TestServingPropertyFindsEachServingBug(t *testing.T) {
	for _, b := range ServingBugs {
		props := gopter.NewProperties(servingParams(1, 300))
		props.Property(b.Summary, ServingProperty(b.Variant, nil))
		if props.Run(gopter.NewFormatedReporter(false, 80, discard{})) {
			t.Errorf("%s (%s): 300 command sequences found nothing", b.Name, b.Summary)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
