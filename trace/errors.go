package trace

import "fmt"

// Error is a problem with a trace, naming the file, the tensor (if any) and the field.
type Error struct {
	File   string
	Tensor string
	Field  string
	Msg    string
}

func (e *Error) Error() string {
	s := e.File
	if s == "" {
		s = "trace"
	}
	if e.Tensor != "" {
		s += fmt.Sprintf(": tensor %q", e.Tensor)
	}
	if e.Field != "" {
		s += ": field " + e.Field
	}
	return s + ": " + e.Msg
}

// fieldErr makes an Error for a field; the caller fills in the file and tensor.
func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// inFile attaches file and tensor names to err (an *Error gets them filled in).
func inFile(err error, file, tensorKey string) error {
	if e, ok := err.(*Error); ok {
		e2 := *e
		if e2.File == "" {
			e2.File = file
		}
		if e2.Tensor == "" {
			e2.Tensor = tensorKey
		}
		return &e2
	}
	return &Error{File: file, Tensor: tensorKey, Msg: err.Error()}
}
