package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// StepPrefix names the directory of one training step in a multi-step dump: spcheck_dump
// writes step N of a run that captures several steps to DIR/step-NNNNNN/ (six digits).
const StepPrefix = "step-"

// StepKey is the key of Meta.Extra where spcheck_dump records the training step of a file.
const StepKey = "step"

// StepDir resolves which directory holds training step `step` of a dump at dir: dir/step-NNNNNN
// when the dump holds several steps, else dir itself (a one-step dump, whose files must not
// say they hold another step). step < 0 asks for the dump's only step: dir when it holds
// trace files, else its one step-NNNNNN directory; several are an error listing them.
func StepDir(dir string, step int) (string, error) {
	steps, err := listSteps(dir)
	if err != nil {
		return "", err
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if step >= 0 {
		sub := filepath.Join(dir, fmt.Sprintf("%s%06d", StepPrefix, step))
		if slices.Contains(steps, step) {
			return sub, nil
		}
		if len(files) == 0 {
			return "", &Error{File: dir, Field: "step", Msg: fmt.Sprintf("no step %d here: %s", step, describeSteps(steps))}
		}
		for _, p := range files {
			f, err := Open(p)
			if err != nil {
				return "", err
			}
			s, ok := f.Meta.Extra[StepKey]
			f.Close()
			if ok && s != strconv.Itoa(step) {
				return "", &Error{File: p, Field: "extra.step", Msg: fmt.Sprintf("holds step %s, not step %d", s, step)}
			}
		}
		return dir, nil
	}
	switch {
	case len(files) > 0 || len(steps) == 0:
		return dir, nil
	case len(steps) == 1:
		return filepath.Join(dir, fmt.Sprintf("%s%06d", StepPrefix, steps[0])), nil
	}
	return "", &Error{File: dir, Field: "step", Msg: describeSteps(steps) + ": choose one with --step N"}
}

// listSteps returns the steps of dir's step-NNNNNN subdirectories, ascending.
func listSteps(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{File: dir, Msg: err.Error()}
	}
	var steps []int
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), StepPrefix); ok && e.IsDir() {
			if s, err := strconv.Atoi(n); err == nil && s >= 0 {
				steps = append(steps, s)
			}
		}
	}
	slices.Sort(steps)
	return steps, nil
}

func describeSteps(steps []int) string {
	if len(steps) == 0 {
		return "no trace files and no step-NNNNNN directories"
	}
	ss := make([]string, len(steps))
	for i, s := range steps {
		ss[i] = strconv.Itoa(s)
	}
	return "the dump holds steps " + strings.Join(ss, ", ")
}
