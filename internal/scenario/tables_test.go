package scenario

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEveryTableGivesReasons holds the repository to its convention: a table test — a range
// over a slice of structs in a test function of a _test.go file — goes through Cases, so that
// every case carries a non-empty reason. Benchmarks are exempt (a row is a measurement named by
// its sub-benchmark). It reads the source of every test file of the module.
func TestEveryTableGivesReasons(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no module root at %s: %v", root, err)
	}
	var bad []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, pos := range unreasonedTables(t, path, src) {
			bad = append(bad, rel+":"+pos)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("table tests that do not go through scenario.Cases (give the case struct a reason field and range over scenario.Cases(t, cases)):\n  %s",
			strings.Join(bad, "\n  "))
	}
}

// unreasonedTables lists the line:column of every range over a struct table in one file that
// is not wrapped in a call of Cases: a literal, or a variable bound to one in the same function
// or at package level. Struct types declared in the file count as tables too.
func unreasonedTables(t *testing.T, path string, src []byte) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	structTypes := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if _, ok := ts.Type.(*ast.StructType); ok {
				structTypes[ts.Name.Name] = true
			}
		}
		return true
	})
	isTable := func(e ast.Expr) bool {
		cl, ok := e.(*ast.CompositeLit)
		if !ok {
			return false
		}
		at, ok := cl.Type.(*ast.ArrayType)
		if !ok {
			return false
		}
		switch el := at.Elt.(type) {
		case *ast.StructType:
			return true
		case *ast.Ident:
			return structTypes[el.Name]
		}
		return false
	}
	tables := map[string]bool{} // variables bound to a table literal
	bind := func(lhs []ast.Expr, rhs []ast.Expr) {
		for i, l := range lhs {
			if id, ok := l.(*ast.Ident); ok && i < len(rhs) && isTable(rhs[i]) {
				tables[id.Name] = true
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			bind(n.Lhs, n.Rhs)
		case *ast.ValueSpec:
			lhs := make([]ast.Expr, len(n.Names))
			for i, id := range n.Names {
				lhs[i] = id
			}
			bind(lhs, n.Values)
		}
		return true
	})
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			return !strings.HasPrefix(n.Name.Name, "Benchmark")
		case *ast.RangeStmt:
			x := n.X
			if id, ok := x.(*ast.Ident); ok && !tables[id.Name] {
				return true
			}
			if !isTable(x) && !isIdent(x) {
				return true
			}
			p := fset.Position(n.Pos())
			out = append(out, strings.TrimPrefix(p.String(), p.Filename+":"))
		}
		return true
	})
	return out
}

func isIdent(e ast.Expr) bool { _, ok := e.(*ast.Ident); return ok }

func TestUnreasonedTablesFindsThem(t *testing.T) {
	src := `package x

type named struct{ in, reason string }

func TestA(t *testing.T) {
	for _, c := range []struct{ in string }{{"a"}} {
	}
	cases := []named{{"a", "why"}}
	for _, c := range cases {
	}
	for _, c := range scenario.Cases(t, cases) {
	}
	for _, s := range []string{"not a table"} {
	}
	for _, c := range late {
	}
}

func BenchmarkB(b *testing.B) {
	for _, c := range []struct{ n int }{{1}} {
	}
}

var late = []struct{ n int }{{1}}
`
	got := strings.Join(unreasonedTables(t, "x_test.go", []byte(src)), " ")
	if want := "6:2 9:2 15:2"; got != want {
		t.Errorf("unreasoned tables at %s, want %s (a literal, a variable, a package-level variable declared later)", got, want)
	}
}
