package reports

import (
	"fmt"
	"html"
	"html/template"
	"image/color"
	"io"
	"math"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// HTML renders r as one self-contained page (inline CSS and SVG, nothing fetched): the outcome,
// the first divergence, every tensor, and per diagnosed tensor a heatmap of its error (ranks ×
// positions, log10 of the error in units of the tolerance, clamped so NaN and ±Inf still plot)
// and its block table.
func HTML(w io.Writer, r *verify.Report) error {
	page := htmlPage{Title: "spcheck compare: " + headline(r), Verified: r.Verified(), Headline: headline(r), Sentences: r.Sentences(),
		Ref: traceLine(r.Ref), Cand: traceLine(r.Cand), Undiagnosed: r.Undiagnosed}
	if n := r.Consequences(); n > 0 {
		page.Follow = followWords(n)
	}
	if len(r.Tol) > 0 {
		page.Tol = r.Tol.String()
	}
	page.Rules = ruleLines(r)
	page.Version = versionLine()
	for _, res := range roots(r) {
		page.Roots = append(page.Roots, rootPanel(res))
	}
	for _, res := range failuresFirst(r) {
		page.Rows = append(page.Rows, htmlResult{Order: res.Order, Name: res.Name, Kind: string(res.Kind),
			Verdict: string(res.Verdict) + roleMark(res), Failed: r.Failed(res), MaxAbs: num(res.MaxAbs), MaxRel: num(res.MaxRel),
			Outside: fmt.Sprintf("%d/%d", res.Outside, res.Numel), Units: num(res.TolUnits), RefMD5: res.RefMD5, CandMD5: res.CandMD5,
			UnitsKey: sortKey(res.TolUnits), AbsKey: sortKey(res.MaxAbs), RelKey: sortKey(res.MaxRel), OutKey: res.Outside})
	}
	for i, res := range diagnosed(r) {
		d := res.Diagnosis
		hd := htmlDiag{ID: fmt.Sprintf("d%d", i), Name: res.Name, Verdict: string(res.Verdict), Title: diagnosisTitle(d),
			Heatmap: template.HTML(heatmapSVG(d)), Headers: blockHeaders(d), Lost: lostLine(d), Findings: d.Findings}
		for _, row := range d.Rows {
			hr := htmlDiagRow{Label: rowLabel(row), Region: row.Region, Outside: fmt.Sprintf("%d/%d", row.Outside, row.Numel)}
			for _, b := range row.Blocks {
				hr.Cells = append(hr.Cells, htmlCell{Class: "b-" + strings.ReplaceAll(string(b.Class), " ", "-"), Text: blockCell(b)})
			}
			hd.Rows = append(hd.Rows, hr)
		}
		page.Diags = append(page.Diags, hd)
	}
	if !r.Verified() {
		page.Repro = r.Reproduce()
	}
	return pageTmpl.Execute(w, page)
}

type htmlPage struct {
	Title, Headline, Ref, Cand, Tol string
	Sentences                       []string
	Follow                          string
	Verified                        bool
	Roots                           []htmlRoot
	Undiagnosed                     int
	Rows                            []htmlResult
	Diags                           []htmlDiag
	Repro                           []string
	Rules                           []string
	Version                         string
}

type htmlResult struct {
	Order                                                                int
	Name, Kind, Verdict, MaxAbs, MaxRel, Outside, Units, RefMD5, CandMD5 string
	Failed                                                               bool
	UnitsKey, AbsKey, RelKey                                             string // sortable numbers (NaN last)
	OutKey                                                               int
}

// sortKey is x for the page's sort: "Infinity" for ±Inf and NaN, so they sort as the worst.
func sortKey(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "Infinity"
	}
	return fmt.Sprint(x)
}

// roots lists the first divergence, then the other failures that are no consequence of it.
func roots(r *verify.Report) []*verify.Result {
	out := r.First()
	for _, res := range r.Results {
		if r.Failed(res) && res.Role != verify.Root && res.Role != verify.Consequence {
			out = append(out, res)
		}
	}
	return out
}

// failuresFirst lists r's tensors with the failures first, each group in execution order.
func failuresFirst(r *verify.Report) []*verify.Result {
	var fail, pass []*verify.Result
	for _, res := range r.Results {
		if r.Failed(res) {
			fail = append(fail, res)
		} else {
			pass = append(pass, res)
		}
	}
	return append(fail, pass...)
}

type htmlDiag struct {
	ID, Name, Verdict, Title, Lost string
	Heatmap                        template.HTML
	Headers                        []string
	Rows                           []htmlDiagRow
	Findings                       []string
}

type htmlDiagRow struct {
	Label, Region, Outside string
	Cells                  []htmlCell
}

type htmlCell struct{ Class, Text string }

// Heatmap geometry, in CSS pixels.
const (
	heatLabelW = 150
	heatGridW  = 760
	heatRowH   = 22
	heatLegend = 44
)

// heatColor maps a clamped log10 error (HeatMin…HeatMax, 0 = the tolerance) to a colour: greens
// within tolerance, yellow through dark red beyond it.
func heatColor(v float64) string {
	c := heatRGB(v)
	return fmt.Sprintf("rgb(%d,%d,%d)", c.R, c.G, c.B)
}

// heatRGB is heatColor's colour.
func heatRGB(v float64) color.RGBA {
	lerp := func(a, b [3]float64, t float64) color.RGBA {
		t = math.Max(0, math.Min(1, t))
		return color.RGBA{uint8(a[0] + (b[0]-a[0])*t), uint8(a[1] + (b[1]-a[1])*t), uint8(a[2] + (b[2]-a[2])*t), 255}
	}
	if v <= 0 {
		return lerp([3]float64{232, 245, 233}, [3]float64{102, 187, 106}, (v-verify.HeatMin)/(0-verify.HeatMin))
	}
	return lerp([3]float64{255, 214, 0}, [3]float64{183, 28, 28}, v/verify.HeatMax)
}

// heatmapSVG draws one row per candidate piece and one cell per position bucket, with a legend.
func heatmapSVG(d *verify.Diagnosis) string {
	var b strings.Builder
	h := len(d.Rows)*heatRowH + heatLegend
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="error heatmap">`, heatLabelW+heatGridW, h)
	for i, row := range d.Rows {
		y := i * heatRowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end">rank %s</text>`, heatLabelW-8, y+15, html.EscapeString(rowLabel(row)))
		n := len(row.Heat)
		for j, v := range row.Heat {
			x0 := heatLabelW + j*heatGridW/n
			x1 := heatLabelW + (j+1)*heatGridW/n
			lo, hi := j*row.Numel/n, (j+1)*row.Numel/n
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s, elements [%d,%d): 10^%.1f × tol</title></rect>`,
				x0, y+1, x1-x0, heatRowH-2, heatColor(v), html.EscapeString(rowLabel(row)), lo, hi, v)
		}
	}
	// Legend: the colour scale with its clamp bounds and the tolerance marked.
	y := len(d.Rows)*heatRowH + 8
	steps := 44
	for s := 0; s < steps; s++ {
		v := verify.HeatMin + (verify.HeatMax-verify.HeatMin)*float64(s)/float64(steps-1)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="12" fill="%s"/>`, heatLabelW+s*heatGridW/steps, y, heatGridW/steps+1, heatColor(v))
	}
	for _, tick := range []struct {
		v     float64
		label string
	}{{verify.HeatMin, fmt.Sprintf("≤1e%g×tol", verify.HeatMin)}, {0, "tol"}, {3, "1e3×tol"}, {verify.HeatMax, fmt.Sprintf("≥1e%g×tol, NaN/Inf", verify.HeatMax)}} {
		x := heatLabelW + int((tick.v-verify.HeatMin)/(verify.HeatMax-verify.HeatMin)*float64(heatGridW))
		anchor := "middle"
		if tick.v == verify.HeatMin {
			anchor = "start"
		} else if tick.v == verify.HeatMax {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="%s">%s</text>`, x, y+26, anchor, html.EscapeString(tick.label))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end">error</text>`, heatLabelW-8, y+10)
	b.WriteString(`</svg>`)
	return b.String()
}

// md5Shown is how many hex digits of an MD5 the HTML table shows; the full hash is its tooltip.
const md5Shown = 12

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"slice12": func(s string) string {
	if len(s) > md5Shown {
		return s[:md5Shown] + "…"
	}
	return s
}}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d1d1d;max-width:1400px}
h1{font-size:21px;margin:0 0 8px} h2{font-size:17px;margin:24px 0 6px} h3{font-size:15px;margin:18px 0 4px}
.fail{color:#b3261e} .pass{color:#1b7f3b}
.meta{color:#444;font-size:13px} code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
table{border-collapse:collapse;margin:6px 0} th,td{border:1px solid #d0d0d0;padding:3px 7px;font-size:12px;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr.failed td{background:#fdecea}
.b-correct{background:#e6f4ea} .b-misplaced{background:#fff3cd} .b-duplicated{background:#ffe0b2}
.b-scaled{background:#e3ecfd} .b-slightly-off{background:#fdf3d5} .b-garbage{background:#fbd5d5}
.first{border-left:4px solid #b3261e;padding:4px 10px;background:#fff8f7}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.scroll{overflow-x:auto;max-width:100%} td.name{word-break:break-all}
.panels{display:flex;flex-wrap:wrap;gap:14px;margin:8px 0} figure{margin:0} figcaption{font-size:12px;color:#444}
img.heat2d{image-rendering:pixelated;border:1px solid #bbb;display:block}
.root{margin:10px 0 18px} .meta,.first,p{overflow-wrap:anywhere}
th[data-sort]{cursor:pointer} th.asc::after{content:" ▲"} th.desc::after{content:" ▼"}
</style>
</head>
<body>
<h1>spcheck compare: <span class="{{if .Verified}}pass{{else}}fail{{end}}">{{.Headline}}</span></h1>
{{range .Sentences}}<p class="explain"><b>{{.}}</b></p>
{{end}}<div class="meta">reference: <span class="mono">{{.Ref}}</span><br>candidate: <span class="mono">{{.Cand}}</span>{{if .Tol}}<br>tolerance overrides: <span class="mono">{{.Tol}}</span>{{end}}{{range .Rules}}<br><span class="mono">{{.}}</span>{{end}}</div>
{{range .Roots}}<section class="root"><div class="first"><b>Root:</b> {{.Line}}<br>{{.Detail}}{{range .Signature}}<br><b>{{.}}</b>{{end}}</div>
{{if .Units}}<div class="meta">{{.Axes}}</div>
<div class="panels">
<figure><img class="heat2d" src="{{.Units}}" width="{{.W}}" height="{{.H}}" alt="error / tol"><figcaption>|cand − ref| / tol (green within, red beyond)</figcaption></figure>
<figure><img class="heat2d" src="{{.Ref}}" width="{{.W}}" height="{{.H}}" alt="reference"><figcaption>reference</figcaption></figure>
<figure><img class="heat2d" src="{{.Cand}}" width="{{.W}}" height="{{.H}}" alt="candidate"><figcaption>candidate</figcaption></figure>
<figure>{{.Hist}}<figcaption>elements per decade of error / tol</figcaption></figure>
</div>
<div class="meta">{{.Scale}}</div>
{{if .Shards}}<div class="meta">per candidate shard, |cand − ref| / tol over the shard's region (rows: its leading dims, columns: its last):</div>
<div class="panels">{{range .Shards}}<figure><img class="heat2d shard" src="{{.Units}}" width="{{.W}}" height="{{.H}}" alt="{{.Label}}"><figcaption class="mono">{{.Label}}</figcaption></figure>{{end}}</div>{{end}}{{end}}
</section>
{{end}}{{if .Follow}}<p>{{.Follow}} from it (consequences).</p>{{end}}
<h2>Tensors</h2>
<p class="meta">Failures first. Filter by name, kind or verdict; click a column to sort.</p>
<input id="filter" type="search" placeholder="filter, e.g. agrad/ or diverged" aria-label="filter tensors"> <span id="shown" class="meta"></span>
<div class="scroll">
<table id="tensors">
<thead><tr><th data-sort="order" data-num="1">order</th><th data-sort="name">name</th><th data-sort="kind">kind</th><th data-sort="verdict">verdict</th><th data-sort="abs" data-num="1">max abs</th><th data-sort="rel" data-num="1">max rel</th><th data-sort="out" data-num="1">outside</th><th data-sort="units" data-num="1">×tol</th><th>ref md5</th><th>cand md5</th></tr></thead>
<tbody>
{{range .Rows}}<tr{{if .Failed}} class="failed"{{end}} data-order="{{.Order}}" data-name="{{.Name}}" data-kind="{{.Kind}}" data-verdict="{{.Verdict}}" data-abs="{{.AbsKey}}" data-rel="{{.RelKey}}" data-out="{{.OutKey}}" data-units="{{.UnitsKey}}"><td>{{.Order}}</td><td class="mono name">{{.Name}}</td><td>{{.Kind}}</td><td>{{.Verdict}}</td><td>{{.MaxAbs}}</td><td>{{.MaxRel}}</td><td>{{.Outside}}</td><td>{{.Units}}</td><td class="mono" title="{{.RefMD5}}">{{slice12 .RefMD5}}</td><td class="mono" title="{{.CandMD5}}">{{slice12 .CandMD5}}</td></tr>
{{end}}</tbody></table>
</div>
{{range .Diags}}<h2 id="{{.ID}}">Diagnosis: <span class="mono">{{.Name}}</span> ({{.Verdict}})</h2>
<div class="meta">{{.Title}}</div>
<div class="heat scroll">{{.Heatmap}}</div>
<div class="scroll"><table>
<tr><th>rank</th><th>region</th><th>outside</th>{{range .Headers}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td>{{.Label}}</td><td class="mono">{{.Region}}</td><td>{{.Outside}}</td>{{range .Cells}}<td class="{{.Class}} mono">{{.Text}}</td>{{end}}</tr>
{{end}}</table></div>
{{if .Lost}}<p class="mono">{{.Lost}}</p>{{end}}
{{if .Findings}}<ul>{{range .Findings}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}{{if .Undiagnosed}}<p>{{.Undiagnosed}} later failures have no block diagnosis: they follow from the ones above.</p>{{end}}
{{if .Repro}}<h2>Reproduce</h2>
<pre>{{range .Repro}}{{.}}
{{end}}</pre>{{end}}
<footer class="meta">{{.Version}}</footer>
<script>
// Filter and sort the tensor table; the state lives in the URL's hash (#filter=…&sort=…&dir=…)
// so that a link reproduces a view (and a headless browser can be driven by it).
(function(){
var table=document.getElementById("tensors"); if(!table)return;
var body=table.tBodies[0], input=document.getElementById("filter"), shown=document.getElementById("shown");
var rows=Array.prototype.slice.call(body.rows), state={filter:"",sort:"",dir:"asc"};
function read(){var h=location.hash.replace(/^#/,"").split("&");h.forEach(function(kv){var p=kv.split("=");if(p.length==2&&p[0]in state)state[p[0]]=decodeURIComponent(p[1]);});}
function apply(){
 var f=state.filter.toLowerCase(),n=0;
 rows.forEach(function(r){var hit=!f||(r.dataset.name+" "+r.dataset.kind+" "+r.dataset.verdict).toLowerCase().indexOf(f)>=0;r.hidden=!hit;if(hit)n++;});
 if(state.sort){var th=table.querySelector('th[data-sort="'+state.sort+'"]'),num=th&&th.dataset.num,k=state.sort,s=state.dir=="desc"?-1:1;
  rows.sort(function(a,b){var x=a.dataset[k],y=b.dataset[k];if(num){x=parseFloat(x);y=parseFloat(y);return s*((x>y)-(x<y));}return s*x.localeCompare(y);});
  rows.forEach(function(r){body.appendChild(r);});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.classList.remove("asc","desc");if(c.dataset.sort==k)c.classList.add(state.dir);});}
 shown.textContent=n+" of "+rows.length+" tensors shown"; input.value=state.filter;
 document.body.dataset.shown=n; document.body.dataset.first=(rows.filter(function(r){return !r.hidden;})[0]||{dataset:{}}).dataset.name||"";
}
input.addEventListener("input",function(){state.filter=input.value;apply();});
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){if(!c.dataset.sort)return;c.addEventListener("click",function(){state.dir=(state.sort==c.dataset.sort&&state.dir=="asc")?"desc":"asc";state.sort=c.dataset.sort;apply();});});
read();apply();
document.body.dataset.overflow=String(document.documentElement.scrollWidth>window.innerWidth);
})();
</script>
</body>
</html>
`))
