package oracle

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	layerInner = regexp.MustCompile(`^(layers\.\d+|mtp\.\d+\.layer)\.(.+)$`)
	layerIdx   = regexp.MustCompile(`layers\.\d+`)
	depthIdx   = regexp.MustCompile(`mtp\.\d+`)
)

// docForm is how docs/model.md writes a traced name: layer internals as P.<sub>, indices as
// {i} and {k}, parameters without their param/ or grad/ prefix. "" means "covered by a
// generic row" (an MTP layer's parameters).
func docForm(name string) string {
	kind, rest, _ := strings.Cut(name, "/")
	if kind == "param" || kind == "grad" {
		if strings.Contains(rest, ".layer.") {
			return ""
		}
		return depthIdx.ReplaceAllString(layerIdx.ReplaceAllString(rest, "layers.{i}"), "mtp.{k}")
	}
	if m := layerInner.FindStringSubmatch(rest); m != nil && m[2] != "output" {
		return kind + "/P." + m[2]
	}
	return kind + "/" + depthIdx.ReplaceAllString(layerIdx.ReplaceAllString(rest, "layers.{i}"), "mtp.{k}")
}

// TestDocsListEveryName keeps docs/model.md in step with the traced names.
func TestDocsListEveryName(t *testing.T) {
	doc, err := os.ReadFile("../docs/model.md")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(smallPlan(t, "mtp=2,packed=4:3:5").Model)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if f := docForm(r.Name); f != "" && !strings.Contains(string(doc), "`"+f+"`") {
			t.Errorf("docs/model.md does not list %s (as `%s`)", r.Name, f)
		}
	}
}
