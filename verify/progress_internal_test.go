package verify

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressLine: the line is rewritten in place at most every progressEvery and cleared at
// the end; without a writer nothing happens.
func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 3, 3<<20)
	p.step(1 << 20) // too soon after the start: nothing printed
	if b.Len() != 0 {
		t.Fatalf("printed %q before progressEvery passed", b.String())
	}
	p.last = time.Now().Add(-time.Second)
	p.step(1 << 20)
	if got, want := b.String(), "\rspcheck: compared 2/3 tensors (2.0 MiB of 3.0 MiB)"; got != want {
		t.Errorf("progress %q, want %q", got, want)
	}
	p.finish()
	if !strings.HasSuffix(b.String(), "\r\033[K") {
		t.Errorf("the line is not cleared at the end: %q", b.String())
	}
	quiet := newProgress(nil, 1, 1)
	quiet.step(1)
	quiet.finish()
}
