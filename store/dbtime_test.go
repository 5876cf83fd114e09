package store

import (
	"strings"
	"testing"
	"time"
)

// dbTime is the last line of defence behind the model's time range: a time
// outside it is an error on write (never a panic, never a row that no later
// read can parse), and the extremes inside it read back as written.
func TestDBTimeRange(t *testing.T) {
	for _, s := range []string{"9999-12-31T23:59:59-23:59", "0000-12-31T23:59:59Z", "0001-01-01T00:00:00+00:01"} {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := newDBTime(v).Value()
		if err == nil || got != nil || !strings.Contains(err.Error(), "outside the years 0001..9999") {
			t.Errorf("%s: wrote %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T00:00:59.999999-23:59"} {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := newDBTime(v).Value()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var back dbTime
		if err := back.Scan(raw); err != nil || !back.Equal(v) {
			t.Errorf("%s: wrote %v, read %v, %v", s, raw, back.Time, err)
		}
	}
}
