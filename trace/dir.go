package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Trace is a directory of rank files, one per rank of the same world and mesh.
type Trace struct {
	Dir   string
	Files []*File // index = rank
}

// OpenDir opens every *.safetensors file in dir and checks that they form one trace: the same
// world and mesh, every rank present exactly once.
func OpenDir(dir string) (*Trace, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, &Error{File: dir, Msg: err.Error()}
	}
	if len(paths) == 0 {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, &Error{File: dir, Msg: statErr.Error()}
		}
		return nil, &Error{File: dir, Msg: "no *.safetensors files: not a trace directory"}
	}
	sort.Strings(paths)
	var files []*File
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, f)
	}
	t, err := New(dir, files)
	if err != nil {
		closeAll(files)
		return nil, err
	}
	return t, nil
}

func closeAll(files []*File) {
	for _, f := range files {
		f.Close()
	}
}

func (t *Trace) checkRanks() error {
	first := t.Files[0]
	byRank := make([]*File, first.Meta.World)
	for _, f := range t.Files {
		m := f.Meta
		if m.World != first.Meta.World {
			return &Error{File: f.Path, Field: "world", Msg: fmt.Sprintf("is %d, but %s says %d", m.World, first.Path, first.Meta.World)}
		}
		if !slices.Equal(m.Mesh.Axes, first.Meta.Mesh.Axes) || !slices.Equal(m.Mesh.Shape, first.Meta.Mesh.Shape) {
			return &Error{File: f.Path, Field: "mesh", Msg: fmt.Sprintf("is %v, but %s says %v", m.Mesh, first.Path, first.Meta.Mesh)}
		}
		if prev := byRank[m.Rank]; prev != nil {
			return &Error{File: f.Path, Field: "rank", Msg: fmt.Sprintf("rank %d is also claimed by %s", m.Rank, prev.Path)}
		}
		byRank[m.Rank] = f
	}
	var missing []int
	for r, f := range byRank {
		if f == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return &Error{File: t.Dir, Field: "rank", Msg: fmt.Sprintf("world is %d but no file for rank(s) %v", first.Meta.World, missing)}
	}
	t.Files = byRank
	return nil
}

// Close closes every file.
func (t *Trace) Close() { closeAll(t.Files) }

// New forms a trace from files already opened (e.g. read from memory with Read), checking
// world, mesh and ranks exactly as OpenDir does. dir names the trace in errors.
func New(dir string, files []*File) (*Trace, error) {
	if len(files) == 0 {
		return nil, &Error{File: dir, Msg: "no rank files"}
	}
	t := &Trace{Dir: dir, Files: files}
	if err := t.checkRanks(); err != nil {
		return nil, err
	}
	return t, nil
}
