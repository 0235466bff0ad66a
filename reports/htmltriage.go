package reports

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// The triage panels of the HTML report: per root of the divergence, its error as 2-D heatmaps
// (reference, candidate, |cand − ref| / tol) drawn as inline PNG images from verify.Heatmap, and
// a histogram of the element errors as inline SVG. Nothing is fetched: the page stays one
// offline file, and its size is bounded by verify.HeatmapMax per root.

// htmlRoot is one root's triage panel.
type htmlRoot struct {
	Name, Line, Detail string
	Signature          []string
	Axes               string
	Ref, Cand, Units   template.URL // data: URLs of the PNG heatmaps
	W, H               int          // CSS size of each heatmap image
	Hist               template.HTML
	Scale              string
	Shards             []htmlShard
}

// heatPanelW and shardPanelW are the CSS widths of a heatmap panel and of a shard's.
const (
	heatPanelW  = 300
	shardPanelW = 140
)

// htmlShard is one candidate shard's error heatmap.
type htmlShard struct {
	Label string
	Units template.URL
	W, H  int
}

// unitsPNG draws errors in units of the tolerance on the heat scale; empty cells are white.
func unitsPNG(rows, cols int, units []float64) template.URL {
	return pngURL(rows, cols, func(i int) color.RGBA {
		if units[i] < 0 {
			return color.RGBA{255, 255, 255, 255}
		}
		return heatRGB(clampLog(units[i]))
	})
}

func rootPanel(res *verify.Result) htmlRoot {
	p := htmlRoot{Name: res.Name, Line: firstLine(res), Detail: detailLine(res), Signature: append(signatureLines(res), replicaLines(res)...)}
	h := res.Heatmap
	if h == nil {
		return p
	}
	p.Axes = fmt.Sprintf("rows: %s (%d, pooled into %d), columns: the last dim (%d, pooled into %d); each cell shows its worst element",
		rowAxis(res.RefShape), h.RowLen, h.Rows, h.ColLen, h.Cols)
	p.W = heatPanelW
	p.H = max(24, min(heatPanelW, heatPanelW*h.Rows/h.Cols))
	vmax := 0.0
	for i := range h.Ref {
		for _, v := range []float64{h.Ref[i], h.Cand[i]} {
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				vmax = max(vmax, math.Abs(v))
			}
		}
	}
	p.Scale = fmt.Sprintf("values: blue −%s … white 0 … red +%s (the same scale for both)", num(vmax), num(vmax))
	p.Ref = pngURL(h.Rows, h.Cols, func(i int) color.RGBA { return valueColor(h.Ref[i], vmax) })
	p.Cand = pngURL(h.Rows, h.Cols, func(i int) color.RGBA { return valueColor(h.Cand[i], vmax) })
	p.Units = unitsPNG(h.Rows, h.Cols, h.Units)
	for _, sh := range h.Shards {
		if len(sh.Units) == 0 {
			continue
		}
		p.Shards = append(p.Shards, htmlShard{Label: "rank " + strings.Trim(strings.ReplaceAll(fmt.Sprint(sh.Ranks), " ", ", "), "[]") + " " + sh.Region,
			Units: unitsPNG(sh.Rows, sh.Cols, sh.Units), W: shardPanelW, H: max(16, min(shardPanelW, shardPanelW*sh.Rows/sh.Cols))})
	}
	p.Hist = template.HTML(histogramSVG(h))
	return p
}

// rowAxis names the pooled leading dims of a shape: "dims 0–1 [2×8]".
func rowAxis(shape []int) string {
	if len(shape) < 2 {
		return "one row"
	}
	lead := make([]string, len(shape)-1)
	for i, d := range shape[:len(shape)-1] {
		lead[i] = fmt.Sprint(d)
	}
	if len(lead) == 1 {
		return "dim 0"
	}
	return fmt.Sprintf("dims 0–%d [%s] flattened", len(lead)-1, strings.Join(lead, "×"))
}

// clampLog is log10(u) clamped to the heat scale (verify.HeatMin … HeatMax).
func clampLog(u float64) float64 {
	if u <= 0 {
		return verify.HeatMin
	}
	return math.Max(verify.HeatMin, math.Min(verify.HeatMax, math.Log10(u)))
}

// valueColor maps v in [−vmax, vmax] to blue–white–red; NaN and ±Inf are black.
func valueColor(v, vmax float64) color.RGBA {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return color.RGBA{0, 0, 0, 255}
	}
	t := 0.0
	if vmax > 0 {
		t = math.Max(-1, math.Min(1, v/vmax))
	}
	if t >= 0 {
		return color.RGBA{255, uint8(255 - 200*t), uint8(255 - 200*t), 255}
	}
	return color.RGBA{uint8(255 + 200*t), uint8(255 + 200*t), 255, 255}
}

// pngURL draws one pixel per heatmap cell (the page scales it up, pixelated).
func pngURL(rows, cols int, at func(i int) color.RGBA) template.URL {
	img := image.NewRGBA(image.Rect(0, 0, cols, rows))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			img.SetRGBA(c, r, at(r*cols+c))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}

// histogramSVG draws the count of elements per decade of error (in units of the tolerance).
func histogramSVG(h *verify.Heatmap) string {
	const w, ht, pad = 300, 120, 18
	peak := 1
	for _, n := range h.Hist {
		peak = max(peak, n)
	}
	n := len(h.Hist)
	bw := float64(w) / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="hist" width="%d" height="%d" role="img" aria-label="error histogram">`, w, ht+2*pad)
	for i, c := range h.Hist {
		bh := 0.0
		if c > 0 {
			bh = math.Max(1, float64(ht)*math.Log1p(float64(c))/math.Log1p(float64(peak)))
		}
		dec := verify.HistLo + i
		fill := "#66bb6a"
		if dec >= 0 {
			fill = "#c62828"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%d elements at 1e%d–1e%d × tol</title></rect>`,
			float64(i)*bw+1, float64(pad+ht)-bh, bw-2, bh, fill, c, dec, dec+1)
	}
	x0 := float64(-verify.HistLo) * bw
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333" stroke-dasharray="3 2"/>`, x0, x0, pad/2, pad+ht)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">tol</text>`, x0, pad/2+2)
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="11">≤1e%d</text><text x="%d" y="%d" font-size="11" text-anchor="end">≥1e%d × tol</text>`,
		ht+2*pad-2, verify.HistLo+1, w, ht+2*pad-2, verify.HistHi)
	b.WriteString(`</svg>`)
	return b.String()
}
