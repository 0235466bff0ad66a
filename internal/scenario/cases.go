package scenario

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Cases returns cases unchanged after checking that every case says why it is in the table: a
// struct case needs a non-empty string field named reason (or Reason). A case without one fails
// the test, naming its index; a case type without such a field is a mistake in the test itself.
//
//	for _, c := range scenario.Cases(t, []struct{ in, want, reason string }{...}) {
func Cases[C any](t testing.TB, cases []C) []C {
	t.Helper()
	for i, c := range cases {
		v := reflect.ValueOf(c)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			t.Fatalf("scenario.Cases: case %d is a %s, not a struct with a reason field", i, v.Kind())
		}
		f := v.FieldByName("reason")
		if !f.IsValid() {
			f = v.FieldByName("Reason")
		}
		if !f.IsValid() || f.Kind() != reflect.String {
			t.Fatalf("scenario.Cases: %s has no string field named reason", v.Type())
		}
		if strings.TrimSpace(f.String()) == "" {
			t.Errorf("table case %d has no reason (say why it is in the table): %s", i, describe(v))
		}
	}
	return cases
}

// describe shows a case's first string fields so that a reader can find it in the table.
func describe(v reflect.Value) string {
	var parts []string
	for i := 0; i < v.NumField() && len(parts) < 3; i++ {
		if f := v.Field(i); f.Kind() == reflect.String && f.String() != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", v.Type().Field(i).Name, f.String()))
		}
	}
	if len(parts) == 0 {
		return "(no string fields set)"
	}
	return strings.Join(parts, " ")
}
