package model

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"testing"
	"time"
)

func rfc3339(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

// Times the doors parse but no store holds: RFC 3339 allows years 0000 and
// offsets of ±23:59, which carry a year-9999 time into year 10000 in UTC.
var outOfRange = []string{
	"9999-12-31T23:59:59-23:59",
	"9999-12-31T23:00:00-01:00",
	"9999-12-31T23:59:59.999999999-00:01",
	"0000-01-01T00:00:00Z",
	"0000-12-31T23:59:59.999999999Z",
	"0001-01-01T00:00:00+00:01",
	"0001-01-01T23:58:59+23:59",
}

// The extremes the stores hold, each written in another zone too.
var inRange = []string{
	"0001-01-01T00:00:00.000001Z",
	"0001-01-01T23:59:00.000001+23:59",
	"9999-12-31T23:59:59.999999Z",
	"9999-12-31T00:00:59.999999-23:59",
	"2024-01-15T16:30:00+02:00",
}

// Rule: the range is years 0001..9999 of the normalised (UTC, microsecond)
// time, whatever offset the input carried.
func TestTimeInRange(t *testing.T) {
	for _, s := range outOfRange {
		if TimeInRange(rfc3339(t, s)) {
			t.Errorf("%s: in range", s)
		}
	}
	for _, s := range inRange {
		if !TimeInRange(rfc3339(t, s)) {
			t.Errorf("%s: out of range", s)
		}
	}
	for _, c := range []struct {
		t  time.Time
		ok bool
	}{
		{time.Time{}, true}, // 0001-01-01T00:00:00Z
		{minTime, true},
		{maxTime, true},
		// Sub-microsecond digits are cut as the stores cut them: still 9999.
		{maxTime.Add(999 * time.Nanosecond), true},
		{maxTime.Add(time.Microsecond), false},
		{minTime.Add(-time.Nanosecond), false},
		{time.Unix(math.MaxInt64/2, 0), false},
		{time.Unix(math.MinInt64/2, 0), false},
	} {
		if got := TimeInRange(c.t); got != c.ok {
			t.Errorf("%v: in range %v, want %v", c.t, got, c.ok)
		}
	}
}

// Rule: every time input of the model, whichever door it came through, is
// checked by the one range rule and named by its field.
func TestEveryTimeInputChecksTheRange(t *testing.T) {
	now := rfc3339(t, "2024-01-01T00:00:00Z")
	inputs := []struct {
		field string
		check func(time.Time) []FieldError
		// low says whether the low extreme is otherwise valid (an expiry must be in the future).
		low bool
	}{
		{"occurredAt", func(v time.Time) []FieldError {
			in := validCreate()
			in.OccurredAt = v
			return in.Validate()
		}, true},
		{"occurredAt", func(v time.Time) []FieldError {
			p := IncidentPatch{OccurredAt: Some(v)}
			return p.Validate()
		}, true},
		{"resolvedAt", func(v time.Time) []FieldError {
			p := IncidentPatch{ResolvedAt: Some(v)}
			return p.Validate()
		}, true},
		{"startsAt", func(v time.Time) []FieldError {
			in := MaintenanceInput{Description: "d", StartsAt: v, EndsAt: maxTime, ComponentIDs: []string{"cmp_a"}}
			return dropRule(in.Validate(), "endsAt must be after startsAt")
		}, true},
		{"endsAt", func(v time.Time) []FieldError {
			in := MaintenanceInput{Description: "d", StartsAt: minTime.Add(time.Nanosecond), EndsAt: v, ComponentIDs: []string{"cmp_a"}}
			return dropRule(in.Validate(), "endsAt must be after startsAt")
		}, true},
		{"fromOccurredAt", func(v time.Time) []FieldError {
			f := IncidentFilter{From: &v}
			return f.Validate()
		}, true},
		{"toOccurredAt", func(v time.Time) []FieldError {
			f := IncidentFilter{To: &v}
			return f.Validate()
		}, true},
		{"expiresAt", func(v time.Time) []FieldError {
			in := APIKeyCreate{Name: "k", Scopes: []Scope{ScopeRead}, ExpiresAt: &v}
			return in.Validate(nil, now)
		}, false},
		{"expiresAt", func(v time.Time) []FieldError {
			in := APIKeyIssue{TenantID: "t", Name: "k", Scopes: []Scope{ScopeRead}, ExpiresAt: &v}
			return in.Validate()
		}, true},
		{"from", func(v time.Time) []FieldError {
			q := AuditQuery{Limit: 1, From: &v}
			return details(q.Validate())
		}, true},
		{"to", func(v time.Time) []FieldError {
			q := AuditQuery{Limit: 1, To: &v}
			return details(q.Validate())
		}, true},
	}
	for _, in := range inputs {
		want := []FieldError{{in.field, in.field + " must be between years 0001 and 9999"}}
		for _, s := range outOfRange {
			if got := in.check(rfc3339(t, s)); len(got) != 1 || got[0] != want[0] {
				t.Errorf("%s = %s: %q, want %q", in.field, s, got, want)
			}
		}
		for _, s := range inRange {
			v := rfc3339(t, s)
			if !in.low && v.Before(now) {
				continue
			}
			if got := in.check(v); len(got) != 0 {
				t.Errorf("%s = %s: %q, want no violation", in.field, s, got)
			}
		}
	}
}

func dropRule(errs []FieldError, msg string) []FieldError {
	var out []FieldError
	for _, e := range errs {
		if e.Message != msg {
			out = append(out, e)
		}
	}
	return out
}

func details(err error) []FieldError {
	if err == nil {
		return nil
	}
	return AsError(err).Details
}

// Rule: an expiry out of range is reported for its range alone, not also as past.
func TestExpiryBeforeYearOneIsARangeError(t *testing.T) {
	v := rfc3339(t, "0000-06-01T00:00:00Z")
	in := APIKeyCreate{Name: "k", Scopes: []Scope{ScopeRead}, ExpiresAt: &v}
	wantErrs(t, in.Validate(nil, t0), []FieldError{{"expiresAt", "expiresAt must be between years 0001 and 9999"}})
}

// Rule: a cursor whose time no store holds is damaged: the "invalid cursor"
// refusal, never a query.
func TestCursorTimeOutOfRange(t *testing.T) {
	q := &IncidentQuery{Sort: DefaultSort, Limit: 1}
	inc := base()
	good := NewCursor(q, inc)
	forge := func(k string) string {
		raw, err := base64.RawURLEncoding.DecodeString(good)
		if err != nil {
			t.Fatal(err)
		}
		var w cursorWire
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		w.K = k
		raw, _ = json.Marshal(w)
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	for _, s := range outOfRange {
		_, err := DecodeCursor(forge(s))
		wantInvalid(t, err, "Invalid query parameters", []FieldError{{"cursor", "cursor is invalid: pass pagination.nextCursor unchanged"}})
	}
	for _, s := range inRange {
		c, err := DecodeCursor(forge(s))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if !c.KeyTime.Equal(rfc3339(t, s)) {
			t.Errorf("%s: key time %v", s, c.KeyTime)
		}
	}
	// The cursor of an incident at either extreme decodes to the same time.
	for _, at := range []time.Time{minTime, maxTime} {
		inc.OccurredAt = at
		c, err := DecodeCursor(NewCursor(q, inc))
		if err != nil || !c.KeyTime.Equal(at) {
			t.Errorf("%v: %+v, %v", at, c, err)
		}
	}
}

// Rule: a rotation overlap is 0..30 days, checked on the seconds before they
// become a duration, so that no product wraps into range.
func TestRotationOverlap(t *testing.T) {
	bad := []FieldError{{"overlapSeconds", "overlapSeconds must be between 0 and 2592000 (30 days)"}}
	for _, c := range []struct {
		seconds int64
		want    time.Duration
		ok      bool
	}{
		{0, 0, true},
		{1, time.Second, true},
		{2592000, MaxRotationOverlap, true},
		{2592001, 0, false},
		{-1, 0, false},
		{18446744074, 0, false}, // wraps to 0.29 s when multiplied first
		{math.MaxInt64, 0, false},
		{math.MinInt64, 0, false},
		{math.MaxInt64/int64(time.Second) + 1, 0, false},
	} {
		d, err := RotationOverlap(c.seconds)
		if c.ok {
			if err != nil || d != c.want {
				t.Errorf("%d: %v, %v; want %v", c.seconds, d, err, c.want)
			}
			continue
		}
		wantInvalid(t, err, "Invalid request body", bad)
	}
}
