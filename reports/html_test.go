package reports_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/internal/testenv"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
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

// chromiumArgs are the flags of every headless run: no network, a private profile.
func chromiumArgs(dir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,900"}
}

// dumpDOM loads url in headless Chromium, runs the page's script and returns the DOM.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, append(chromiumArgs(t.TempDir()), "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	return string(out)
}

// catalogueReport is the report of a catalogue bug run on the simulator against the oracle.
func catalogueReport(t *testing.T, planStr string) *verify.Report {
	t.Helper()
	p, err := plan.Parse(planStr)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Verify(p, v, verify.Options{Command: pipeline.VerifyCommand(p)})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// gpuReport compares a recorded GPU run (testdata/gpu) with the oracle of the plan it records,
// as spcheck compare does: tolerance from the noise of the plan's single-device run.
// dumpReport compares a framework's own dump with its own single-device reference, as a user's
// plain spcheck compare does (no model, so no noise run).
func dumpReport(t *testing.T, refDir, candDir string) *verify.Report {
	t.Helper()
	open := func(dir string) *trace.Trace {
		tr, err := trace.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	rep, err := verify.Compare(open(refDir), open(candDir), verify.Options{Command: "spcheck compare " + refDir + " " + candDir})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func gpuReport(t *testing.T, dir string) *verify.Report {
	t.Helper()
	cand, err := trace.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cand.Close() })
	p, err := plan.Parse(cand.Files[0].Meta.Plan)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := pipeline.Reference(p)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := pipeline.WithNoise(p, ref, verify.Options{Command: "spcheck compare ref/ " + dir})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Compare(ref, cand, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var (
	external = regexp.MustCompile(`(src|href)="(https?:|//|/)|url\(|@import|fetch\(|XMLHttpRequest`)
	heat2D   = regexp.MustCompile(`<img class="heat2d" src="data:image/png;base64,`)
	bodyData = regexp.MustCompile(`<body data-shown="(\d+)" data-first="([^"]*)" data-overflow="(\w+)"`)
)

// TestHTMLTriage renders the triage report of a catalogue bug and of a real GPU run in headless
// Chromium: the 2-D heatmaps of each root are there (reference, candidate, error), the page
// does not overflow horizontally at 1200 px, nothing outside the file is referenced, the
// size stays bounded; and the tensor table's script filters and sorts (driven through the
// URL's hash, the same functions the input box and the column headers call).
func TestHTMLTriage(t *testing.T) {
	chromium := testenv.Program(t, "CHROMIUM", "chromium", "apt-get install -y chromium")
	dir := t.TempDir()
	for _, c := range scenario.Cases(t, []struct {
		name, filter, sort string
		shards             int // per-shard heatmaps of the first root
		rep                func() *verify.Report
		reason             string
	}{
		{name: "catalogue-partial-p2p", filter: "grad/", sort: "units", shards: 2,
			rep: func() *verify.Report {
				return catalogueReport(t, "tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0,bug=partial-p2p-under-sp")
			},
			reason: "a catalogue bug: one root, 72 consequences"},
		{name: "gpu-sp-norm-grad", filter: "norm", sort: "units",
			rep: func() *verify.Report {
				return gpuReport(t, filepath.Join("..", "testdata", "gpu", "bug_sp_norm_grad_not_reduced_tp2_fp32"))
			},
			reason: "a real GPU run (fp32, two H200s) with the SP norm-grad bug"},
		{name: "torch-nccl-no-norm-allreduce", filter: "norm", sort: "units",
			rep: func() *verify.Report {
				return dumpReport(t, filepath.Join("..", "testdata", "torch-nccl", "ref"),
					filepath.Join("..", "testdata", "torch-nccl", "tp2", "mb1", "no-norm-allreduce"))
			},
			reason: "a real framework dump: PyTorch on NCCL (two H200s), the norm-weight grads never all-reduced"},
	}) {
		var b bytes.Buffer
		rep := c.rep()
		if err := reports.HTML(&b, rep); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		path := filepath.Join(dir, c.name+".html")
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes of HTML, %d roots", c.name, len(html), len(rep.First()))
		if n := len(heat2D.FindAllString(html, -1)); n < 3*len(rep.First()) || n == 0 {
			t.Errorf("%s: %d heatmap images for %d roots, want 3 each", c.name, n, len(rep.First()))
		}
		if n := strings.Count(html, `class="heat2d shard"`); n < c.shards {
			t.Errorf("%s: %d per-shard heatmaps, want at least %d", c.name, n, c.shards)
		}
		if external.MatchString(html) {
			t.Errorf("%s: the page references something outside the file", c.name)
		}
		const maxHTML = 2 << 20
		if len(html) > maxHTML {
			t.Errorf("%s: %d bytes of HTML, more than %d", c.name, len(html), maxHTML)
		}
		m := bodyData.FindStringSubmatch(dumpDOM(t, chromium, "file://"+path))
		if m == nil {
			t.Fatalf("%s: the page's script did not run (no data-shown on body)", c.name)
		}
		if m[3] != "false" {
			t.Errorf("%s: the page overflows horizontally at 1200 px", c.name)
		}
		if m[1] != fmt.Sprint(len(rep.Results)) || m[2] != rep.First()[0].Name {
			t.Errorf("%s: unfiltered page shows %s tensors first %q, want %d, the root %q first (failures first)", c.name, m[1], m[2], len(rep.Results), rep.First()[0].Name)
		}
		// Filter and sort by ×tol, descending: the shown rows are those whose name, kind or
		// verdict holds the filter, the worst first.
		m = bodyData.FindStringSubmatch(dumpDOM(t, chromium, "file://"+path+"#filter="+c.filter+"&sort="+c.sort+"&dir=desc"))
		want, worst, worstUnits := 0, "", -1.0
		for _, res := range rep.Results {
			if !strings.Contains(strings.ToLower(res.Name+" "+string(res.Kind)+" "+string(res.Verdict)), c.filter) {
				continue
			}
			want++
			if u := res.TolUnits; u > worstUnits || math.IsInf(u, 1) && !math.IsInf(worstUnits, 1) {
				worst, worstUnits = res.Name, u
			}
		}
		if m == nil || m[1] != fmt.Sprint(want) || m[2] != worst {
			t.Errorf("%s: filtered on %q, sorted by ×tol: got %v, want %d shown, %q first", c.name, c.filter, m, want, worst)
		}
	}
}
