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
	props.Property("fixed serving loop", ServingProperty(func(*serving.Config) {}))
	props.TestingRun(t)
}

func TestServingPropertyFindsEachServingBug(t *testing.T) {
	cases := []struct {
		reason  string
		variant ServingVariant
	}{
		{"old gate duplicates under EP+TP", func(c *serving.Config) { c.Gate = serving.GateOld }},
		{"global-rank gate drops DP groups", func(c *serving.Config) { c.Gate = serving.GateGlobalRank }},
		{"prediction from the current step", func(c *serving.Config) { c.Predict = serving.PredictCurrentStep }},
	}
	for _, c := range cases {
		props := gopter.NewProperties(servingParams(1, 300))
		props.Property(c.reason, ServingProperty(c.variant))
		if props.Run(gopter.NewFormatedReporter(false, 80, discard{})) {
			t.Errorf("%s: 300 command sequences found nothing", c.reason)
		}
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
