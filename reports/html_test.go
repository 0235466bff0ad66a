package reports_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/internal/testenv"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify/verifytest"
)

// screenshot renders an HTML file in headless Chromium and returns the PNG's pixel counts of the
// heatmap's failing red and passing green.
func screenshot(t *testing.T, chromium, htmlPath string) (red, green int) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+out, "--window-size=1200,900", "file://"+htmlPath)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case r > 150 && g < 60 && bl < 60: // the heatmap's ≥1e6×tol end: rgb(183,28,28)
				red++
			case r > 220 && g > 235 && bl > 220 && g > r && g > bl: // within tolerance: rgb(232,245,233)
				green++
			}
		}
	}
	return red, green
}

// TestHTMLRendersInChromium looks at the HTML the way a user does: headless Chromium's
// screenshot of a failing report shows the heatmap (large red and green areas); a passing
// report has no heatmap. Skipped where Chromium is not installed (apt-get install -y chromium).
func TestHTMLRendersInChromium(t *testing.T) {
	chromium := testenv.Program(t, "CHROMIUM", "chromium", "apt-get install -y chromium")
	dir := t.TempDir()
	cases := []struct {
		scenario verifytest.Scenario
		wantHeat bool
		reason   string
	}{
		{verifytest.Seed001("develop"), true, "seed 001: two diagnosed tensors, half of each rank's chunks wrong"},
		{verifytest.Clean(), false, "a verified run has no diagnosis and so no heatmap"},
	}
	for _, c := range scenario.Cases(t, cases) {
		var b bytes.Buffer
		if err := reports.HTML(&b, report(t, c.scenario)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "</html>") {
			t.Fatalf("%s: truncated HTML", c.reason)
		}
		path := filepath.Join(dir, c.scenario.Name+".html")
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		red, green := screenshot(t, chromium, path)
		t.Logf("%s: %d red, %d green pixels", c.scenario.Name, red, green)
		const heatPixels = 5000 // one 380×20 heatmap half-row is 7600 pixels
		if got := red >= heatPixels && green >= heatPixels; got != c.wantHeat {
			t.Errorf("%s: %d red and %d green pixels, heatmap shown = %v, want %v", c.reason, red, green, got, c.wantHeat)
		}
	}
}
