package reports

import (
	"encoding/json"
	"io"
	"math"
	"strconv"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// Schema identifies the JSON document; docs/report-json.md describes it. Fields are only ever
// added within a schema version.
const (
	Schema     = "spcheck-report/1"
	DiffSchema = "spcheck-diff/1"
)

// jnum is a float that encodes NaN and ±Inf as the strings "NaN", "+Inf", "-Inf" (JSON has no
// such numbers).
type jnum float64

func (x jnum) MarshalJSON() ([]byte, error) {
	f := float64(x)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func jnums(v []float64) []jnum {
	out := make([]jnum, len(v))
	for i, x := range v {
		out[i] = jnum(x)
	}
	return out
}

type jReport struct {
	Schema          string          `json:"schema"`
	Version         string          `json:"spcheck_version"`
	Verified        bool            `json:"verified"`
	Explanations    []jExplanation  `json:"explanations"`
	Command         string          `json:"command"`
	Reproduce       []string        `json:"reproduce"`
	Reference       jTrace          `json:"reference"`
	Candidate       jTrace          `json:"candidate"`
	AllowMissing    bool            `json:"allow_missing"`
	TolOverrides    map[string]jnum `json:"tolerance_overrides"`
	Rules           []jRule         `json:"rules"`
	Ignored         []jIgnored      `json:"ignored"`
	Counts          map[string]int  `json:"counts"`
	FirstDivergence []string        `json:"first_divergence"`
	Consequences    int             `json:"consequences"`
	Undiagnosed     int             `json:"undiagnosed"`
	Tensors         []jTensor       `json:"tensors"`
	// Redump is the targeted re-run after a first divergence found on fingerprints (absent
	// otherwise).
	Redump *jRedump `json:"redump,omitempty"`
	// PrecisionBias lists the per-rank precision findings (verify.RankBias; absent when none).
	PrecisionBias []jBias `json:"precision_bias,omitempty"`
}

// jBias is one shard whose error is systematically larger than its TP peers'.
type jBias struct {
	Tensor string `json:"tensor"`
	Ranks  []int  `json:"ranks"`
	Cell   string `json:"cell"`
	Err    jnum   `json:"err"`
	Peers  jnum   `json:"peers"`
	Ratio  jnum   `json:"ratio"`
}

// jExplanation is one root's explanation: the sentence a report opens with.
type jExplanation struct {
	Tensor    string   `json:"tensor"`
	Role      string   `json:"role"`
	Mechanism string   `json:"mechanism"`
	Sentence  string   `json:"sentence"`
	Evidence  []string `json:"evidence"`
}

func jExplanationOf(res *verify.Result) *jExplanation {
	x := res.Explanation
	if x == nil {
		return nil
	}
	return &jExplanation{Tensor: res.Name, Role: string(res.Role), Mechanism: string(x.Mechanism), Sentence: x.Sentence, Evidence: orEmpty(x.Evidence)}
}

type jRule struct {
	Flag    string  `json:"flag"`
	Pattern string  `json:"pattern"`
	RTol    *jnum   `json:"rtol"`
	Matched int     `json:"matched"`
	Warning *string `json:"warning"`
}

type jIgnored struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Order   int    `json:"order"`
	Pattern string `json:"pattern"`
}

type jTrace struct {
	Dir      string            `json:"dir"`
	World    int               `json:"world"`
	Mesh     string            `json:"mesh"`
	Producer string            `json:"producer"`
	ProdVer  string            `json:"producer_version"`
	Plan     string            `json:"plan"`
	Seed     uint64            `json:"seed"`
	Extra    map[string]string `json:"extra"`
	Tensors  int               `json:"tensors"`
	Bytes    int64             `json:"bytes"`
}

type jSide struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Place string `json:"place"`
	MD5   string `json:"md5"`
}

type jTensor struct {
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`
	Order       int           `json:"order"`
	Verdict     string        `json:"verdict"`
	Role        string        `json:"role"`
	Failed      bool          `json:"failed"`
	Reference   *jSide        `json:"reference"`
	Candidate   *jSide        `json:"candidate"`
	RTol        jnum          `json:"rtol"`
	TolRule     *string       `json:"tol_rule"`
	Numel       int           `json:"numel"`
	MaxAbs      jnum          `json:"max_abs"`
	MaxRel      jnum          `json:"max_rel"`
	RMSRel      jnum          `json:"rms_rel"`
	Outside     int           `json:"outside"`
	NonFinite   int           `json:"non_finite"`
	TolUnits    jnum          `json:"tol_units"`
	Worst       int           `json:"worst_index"`
	Region      *jRegion      `json:"region"`
	Ranks       []int         `json:"ranks"`
	Replicas    jReplicas     `json:"replicas"`
	Diagnosis   *jDiagnosis   `json:"diagnosis"`
	Signature   *jSignature   `json:"signature"`
	Explanation *jExplanation `json:"explanation"`
	Note        string        `json:"note"`
	// Fingerprint is present when the tensor was compared on fingerprints.
	Fingerprint *jFingerprint `json:"fingerprint,omitempty"`
}

type jSignature struct {
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	Scale     jnum   `json:"scale"`
	ScaleName string `json:"scale_name"`
	Multiple  *jnum  `json:"multiple"`
	Lost      int    `json:"lost"`
	Positions []int  `json:"positions"`
}

type jRegion struct {
	Lo []int `json:"lo"`
	Hi []int `json:"hi"`
}

type jReplicas struct {
	Reference []jDisagreement `json:"reference"`
	Candidate []jDisagreement `json:"candidate"`
}

type jDisagreement struct {
	Cell   string  `json:"cell"`
	Groups [][]int `json:"groups"`
	MaxAbs jnum    `json:"max_abs"`
}

type jDiagnosis struct {
	Level    string     `json:"level"`
	Parts    int        `json:"parts"`
	Rows     []jRow     `json:"rows"`
	Lost     []jBlockID `json:"lost"`
	Findings []string   `json:"findings"`
}

type jRow struct {
	Rank     int      `json:"rank"`
	Coord    string   `json:"coord"`
	Region   string   `json:"region"`
	Numel    int      `json:"numel"`
	Outside  int      `json:"outside"`
	MaxUnits jnum     `json:"max_tol_units"`
	Heat     []jnum   `json:"heat"`
	Blocks   []jBlock `json:"blocks"`
}

type jBlock struct {
	Lo        int       `json:"lo"`
	Hi        int       `json:"hi"`
	Class     string    `json:"class"`
	Source    *jBlockID `json:"source"`
	Scale     jnum      `json:"scale"`
	ScaleName string    `json:"scale_name"`
	Actual    jValues   `json:"actual"`
	Expected  jValues   `json:"expected"`
}

type jBlockID struct {
	Rank   int     `json:"rank"`
	Coord  string  `json:"coord"`
	Block  int     `json:"block"`
	Values jValues `json:"values"`
}

type jValues struct {
	Head   []jnum `json:"head"`
	Tail   []jnum `json:"tail"`
	Elided int    `json:"elided"`
}

// JSON renders r as the documented, stable JSON document.
func JSON(w io.Writer, r *verify.Report) error {
	doc := jReport{Schema: Schema, Version: buildinfo.Version(), Verified: r.Verified(), Command: r.Command, Reproduce: orEmpty(r.Reproduce()),
		Reference: jTraceOf(r.Ref), Candidate: jTraceOf(r.Cand), AllowMissing: r.AllowMissing,
		TolOverrides: map[string]jnum{}, Counts: map[string]int{}, FirstDivergence: []string{}, Explanations: []jExplanation{},
		Consequences: r.Consequences(), Undiagnosed: r.Undiagnosed, Tensors: []jTensor{},
		Rules: []jRule{}, Ignored: []jIgnored{}, Redump: jRedumpOf(r)}
	for _, u := range r.Rules {
		j := jRule{Flag: u.Flag, Pattern: u.Pattern, Matched: u.Matched}
		if u.Flag == "tol" {
			x := jnum(u.RTol)
			j.RTol = &x
		}
		if u.Unmatched() {
			w := u.String() + " matched no tensor"
			if u.Shadowed > 0 {
				w = u.String() + " applied to no tensor: an earlier rule comes first for every tensor it matches"
			}
			j.Warning = &w
		}
		doc.Rules = append(doc.Rules, j)
	}
	for _, b := range r.Bias {
		doc.PrecisionBias = append(doc.PrecisionBias, jBias{Tensor: b.Name, Ranks: b.Ranks, Cell: b.Cell, Err: jnum(b.Err), Peers: jnum(b.Peers), Ratio: jnum(b.Ratio())})
	}
	for _, t := range r.Ignored {
		doc.Ignored = append(doc.Ignored, jIgnored{Name: t.Name, Kind: string(t.Kind), Order: t.Order, Pattern: t.Pattern})
	}
	for d, v := range r.Tol {
		doc.TolOverrides[d.String()] = jnum(v)
	}
	for _, v := range verify.Verdicts {
		doc.Counts[string(v)] = r.Count(v)
	}
	for _, res := range r.First() {
		doc.FirstDivergence = append(doc.FirstDivergence, res.Name)
	}
	for _, res := range r.Roots() {
		if x := jExplanationOf(res); x != nil {
			doc.Explanations = append(doc.Explanations, *x)
		}
	}
	for _, res := range r.Results {
		doc.Tensors = append(doc.Tensors, jTensorOf(r, res))
	}
	return encode(w, doc)
}

func encode(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jTraceOf(t verify.TraceInfo) jTrace {
	extra := t.Extra
	if extra == nil {
		extra = map[string]string{}
	}
	return jTrace{Dir: t.Dir, World: t.World, Mesh: t.Mesh, Producer: t.Producer, ProdVer: t.ProducerVersion, Plan: t.Plan, Seed: t.Seed,
		Extra: extra, Tensors: t.Tensors, Bytes: t.Bytes}
}

func jSideOf(dt tensor.DType, shape []int, place, md5 string) *jSide {
	if dt == 0 {
		return nil
	}
	if shape == nil {
		shape = []int{}
	}
	return &jSide{DType: dt.String(), Shape: shape, Place: place, MD5: md5}
}

func jTensorOf(r *verify.Report, res *verify.Result) jTensor {
	t := jTensor{Name: res.Name, Kind: string(res.Kind), Order: res.Order, Verdict: string(res.Verdict), Role: string(res.Role),
		Failed:    r.Failed(res),
		Reference: jSideOf(res.RefDType, res.RefShape, res.RefPlace, res.RefMD5),
		Candidate: jSideOf(res.CandDType, res.CandShape, res.CandPlace, res.CandMD5),
		RTol:      jnum(res.RTol), Numel: res.Numel, MaxAbs: jnum(res.MaxAbs), MaxRel: jnum(res.MaxRel), RMSRel: jnum(res.RMSRel),
		Outside: res.Outside, NonFinite: res.NonFinite, TolUnits: jnum(res.TolUnits), Worst: res.Worst,
		Ranks:    res.Ranks,
		Replicas: jReplicas{Reference: jDisagreements(res.RefReplicas), Candidate: jDisagreements(res.CandReplicas)},
		Note:     res.Note}
	if t.Ranks == nil {
		t.Ranks = []int{}
	}
	if res.TolRule != "" {
		t.TolRule = &res.TolRule
	}
	t.Fingerprint = jFingerprintOf(res)
	if res.Lo != nil {
		t.Region = &jRegion{Lo: res.Lo, Hi: res.Hi}
	}
	if d := res.Diagnosis; d != nil {
		jd := &jDiagnosis{Level: d.Level, Parts: d.Parts, Rows: []jRow{}, Lost: []jBlockID{}, Findings: orEmpty(d.Findings)}
		for _, row := range d.Rows {
			jr := jRow{Rank: row.Rank, Coord: row.Coord.String(), Region: row.Region, Numel: row.Numel, Outside: row.Outside,
				MaxUnits: jnum(row.MaxUnits), Heat: jnums(row.Heat)}
			if row.Rank < 0 {
				jr.Coord = "sum"
			}
			for _, b := range row.Blocks {
				jb := jBlock{Lo: b.Lo, Hi: b.Hi, Class: string(b.Class), Scale: jnum(b.Scale), ScaleName: b.ScaleName,
					Actual: jValuesOf(b.Actual), Expected: jValuesOf(b.Expected)}
				if b.Source != nil {
					id := jBlockIDOf(*b.Source)
					jb.Source = &id
				}
				jr.Blocks = append(jr.Blocks, jb)
			}
			jd.Rows = append(jd.Rows, jr)
		}
		for _, l := range d.Lost {
			jd.Lost = append(jd.Lost, jBlockIDOf(l))
		}
		t.Diagnosis = jd
	}
	t.Explanation = jExplanationOf(res)
	if s := res.Signature; s != nil {
		js := &jSignature{Kind: string(s.Kind), Text: s.String(), Scale: jnum(s.Scale), ScaleName: s.ScaleName, Lost: s.Lost, Positions: s.Positions}
		if s.Multiple {
			f := jnum(s.Factor)
			js.Multiple = &f
		}
		if js.Positions == nil {
			js.Positions = []int{}
		}
		t.Signature = js
	}
	return t
}

func jDisagreements(ds []verify.Disagreement) []jDisagreement {
	out := []jDisagreement{}
	for _, d := range ds {
		out = append(out, jDisagreement{Cell: d.Cell, Groups: d.Groups, MaxAbs: jnum(d.MaxAbs)})
	}
	return out
}

func jBlockIDOf(id verify.BlockID) jBlockID {
	return jBlockID{Rank: id.Rank, Coord: id.Coord.String(), Block: id.Block, Values: jValuesOf(id.Values)}
}

func jValuesOf(v verify.Values) jValues {
	return jValues{Head: jnums(v.Head), Tail: jnums(v.Tail), Elided: v.Elided}
}
