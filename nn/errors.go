package nn

import "fmt"

// ShapeError is the value a kernel panics with when a caller passes tensors of inconsistent
// shapes (a programming error, not a data problem).
type ShapeError struct {
	Op  string
	Msg string
}

func (e *ShapeError) Error() string { return "nn." + e.Op + ": " + e.Msg }

func shapePanic(op, format string, args ...any) {
	panic(&ShapeError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// lastDim is the size of t's last dim and the number of rows before it.
func lastDim(op string, shape []int) (rows, cols int) {
	if len(shape) == 0 {
		shapePanic(op, "scalar where a tensor with a feature dim was expected")
	}
	cols = shape[len(shape)-1]
	rows = 1
	for _, d := range shape[:len(shape)-1] {
		rows *= d
	}
	return rows, cols
}

func sameShape(op string, what string, a, b []int) {
	if len(a) != len(b) {
		shapePanic(op, "%s: shapes %v and %v differ", what, a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			shapePanic(op, "%s: shapes %v and %v differ", what, a, b)
		}
	}
}
