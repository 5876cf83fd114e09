package model

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const sortMessage = "sort must be field:direction with field one of: occurredAt, createdAt, updatedAt, severity, status, title and direction asc or desc"

// Rule: sort is field:direction over the six sortable fields, directions
// asc and desc in lower case; String writes it back.
func TestParseSort(t *testing.T) {
	ok := map[string]Sort{
		"occurredAt:desc": {SortOccurredAt, true},
		"createdAt:asc":   {SortCreatedAt, false},
		"updatedAt:desc":  {SortUpdatedAt, true},
		"severity:asc":    {SortSeverity, false},
		"status:desc":     {SortStatus, true},
		"title:asc":       {SortTitle, false},
	}
	for in, want := range ok {
		got, err := ParseSort(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseSort(%q) = %+v %v (String %q)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", ":desc", "name:asc", "title:up", "title:DESC", "Title:asc", "title:asc:desc", "title:"} {
		got, err := ParseSort(bad)
		wantInvalid(t, err, "Invalid query parameters", []FieldError{{"sort", sortMessage}})
		if got != (Sort{}) {
			t.Errorf("ParseSort(%q) = %+v", bad, got)
		}
	}
	// A bare field sorts ascending, as the OpenAPI pattern and README say.
	for _, f := range SortFields {
		got, err := ParseSort(string(f))
		if err != nil || got != (Sort{Field: f}) {
			t.Errorf("ParseSort(%q) = %+v %v, want ascending", f, got, err)
		}
	}
	if DefaultSort.String() != "occurredAt:desc" {
		t.Errorf("default %s", DefaultSort)
	}
}

// Rule: filters check their statuses and severities (one violation each,
// however many are wrong), service <= 100, keyword <= 200, both ends in
// range and from not after to.
func TestIncidentFilterValidate(t *testing.T) {
	at := func(d time.Duration) *time.Time { return ptr(t0.Add(d)) }
	cases := []struct {
		name string
		f    IncidentFilter
		want []FieldError
	}{
		{"empty", IncidentFilter{}, nil},
		{"all valid", IncidentFilter{Statuses: Statuses, Severities: Severities, Service: ptr(text(100)), Keyword: text(200), From: at(0), To: at(time.Hour)}, nil},
		{"from equals to", IncidentFilter{From: at(0), To: at(0)}, nil},
		{"only from", IncidentFilter{From: at(0)}, nil},
		{"only to", IncidentFilter{To: at(0)}, nil},
		{"empty service", IncidentFilter{Service: ptr("")}, nil},
		{"bad statuses", IncidentFilter{Statuses: []Status{StatusOpen, "x", "y"}},
			[]FieldError{{"status", "status must be one of: open, investigating, resolved, closed"}}},
		{"bad severities", IncidentFilter{Severities: []Severity{"x", SeverityLow, "y"}},
			[]FieldError{{"severity", "severity must be one of: critical, high, medium, low"}}},
		{"service too long", IncidentFilter{Service: ptr(text(101))}, []FieldError{{"service", "service must be at most 100 characters"}}},
		{"keyword too long", IncidentFilter{Keyword: text(201)}, []FieldError{{"keyword", "keyword must be at most 200 characters"}}},
		{"from out of range", IncidentFilter{From: ptr(maxTime.Add(time.Second))},
			[]FieldError{{"fromOccurredAt", "fromOccurredAt must be between years 0001 and 9999"}}},
		{"to out of range", IncidentFilter{To: ptr(minTime.Add(-time.Second))},
			[]FieldError{{"toOccurredAt", "toOccurredAt must be between years 0001 and 9999"}}},
		{"from after to", IncidentFilter{From: at(time.Nanosecond), To: at(0)},
			[]FieldError{{"fromOccurredAt", "fromOccurredAt must not be after toOccurredAt"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErrs(t, c.f.Validate(), c.want)
		})
	}
}

// Rule: the key is canonical (member order, repeats, keyword case and time
// zones do not matter) and tells apart every member that filters.
func TestIncidentFilterKey(t *testing.T) {
	f := IncidentFilter{Statuses: []Status{StatusOpen, StatusClosed, StatusOpen}, Severities: []Severity{SeverityLow, SeverityHigh, SeverityLow},
		Service: ptr("api"), Keyword: "DB", From: ptr(t0), To: ptr(t0.Add(time.Hour).In(time.FixedZone("", 3600)))}
	want := `st=closed,open;sv=high,low;svc="api";kw="db";from=2024-01-15T14:30:00Z;to=2024-01-15T15:30:00Z;`
	if got := f.Key(); got != want {
		t.Errorf("key %s\nwant %s", got, want)
	}
	if got := (&IncidentFilter{}).Key(); got != "st=;sv=;" {
		t.Errorf("empty key %s", got)
	}
	if got := (&IncidentFilter{Service: ptr("")}).Key(); got != `st=;sv=;svc="";` {
		t.Errorf("empty service key %s", got)
	}
}

// Rule: OnlyCounted holds when nothing but statuses and severities filter.
func TestOnlyCounted(t *testing.T) {
	for _, c := range []struct {
		f    IncidentFilter
		want bool
	}{
		{IncidentFilter{}, true},
		{IncidentFilter{Statuses: Statuses, Severities: Severities}, true},
		{IncidentFilter{Service: ptr("")}, false},
		{IncidentFilter{Keyword: "x"}, false},
		{IncidentFilter{From: ptr(t0)}, false},
		{IncidentFilter{To: ptr(t0)}, false},
	} {
		if c.f.OnlyCounted() != c.want {
			t.Errorf("%+v: %v", c.f, !c.want)
		}
	}
}

// Rule: Matches is the stores' WHERE clause: any-of statuses and
// severities, exact service, folded keyword in title or description,
// inclusive time bounds at microsecond precision; deleted incidents never.
func TestIncidentFilterMatches(t *testing.T) {
	inc := func(change func(*Incident)) *Incident {
		i := base()
		i.Title, i.Description, i.Service, i.Status, i.Severity = "Database ÉCLAIR", ptr("connection pool exhausted"), ptr("api"), StatusInvestigating, SeverityHigh
		if change != nil {
			change(i)
		}
		return i
	}
	cases := []struct {
		name string
		f    IncidentFilter
		inc  *Incident
		want bool
	}{
		{"nil incident", IncidentFilter{}, nil, false},
		{"empty filter", IncidentFilter{}, inc(nil), true},
		{"deleted", IncidentFilter{}, inc(func(i *Incident) { i.IsDeleted = true }), false},
		{"status any of", IncidentFilter{Statuses: []Status{StatusOpen, StatusInvestigating}}, inc(nil), true},
		{"status none of", IncidentFilter{Statuses: []Status{StatusOpen}}, inc(nil), false},
		{"severity any of", IncidentFilter{Severities: []Severity{SeverityLow, SeverityHigh}}, inc(nil), true},
		{"severity none of", IncidentFilter{Severities: []Severity{SeverityLow}}, inc(nil), false},
		{"status matches, severity not", IncidentFilter{Statuses: []Status{StatusInvestigating}, Severities: []Severity{SeverityLow}}, inc(nil), false},
		{"service equal", IncidentFilter{Service: ptr("api")}, inc(nil), true},
		{"service differs", IncidentFilter{Service: ptr("API")}, inc(nil), false},
		{"service unset on incident", IncidentFilter{Service: ptr("api")}, inc(func(i *Incident) { i.Service = nil }), false},
		{"keyword in title, folded", IncidentFilter{Keyword: "éclair"}, inc(nil), true},
		{"keyword upper case", IncidentFilter{Keyword: "DATABASE"}, inc(nil), true},
		{"keyword in description", IncidentFilter{Keyword: "Pool"}, inc(nil), true},
		{"keyword nowhere", IncidentFilter{Keyword: "disk"}, inc(nil), false},
		{"keyword, no description", IncidentFilter{Keyword: "pool"}, inc(func(i *Incident) { i.Description = nil }), false},
		{"keyword in title, no description", IncidentFilter{Keyword: "data"}, inc(func(i *Incident) { i.Description = nil }), true},
		{"from is inclusive", IncidentFilter{From: ptr(t0)}, inc(nil), true},
		{"before from", IncidentFilter{From: ptr(t0.Add(time.Microsecond))}, inc(nil), false},
		{"from below a microsecond", IncidentFilter{From: ptr(t0.Add(999 * time.Nanosecond))}, inc(nil), true},
		{"to is inclusive", IncidentFilter{To: ptr(t0)}, inc(nil), true},
		{"after to", IncidentFilter{To: ptr(t0.Add(-time.Microsecond))}, inc(nil), false},
		{"within both", IncidentFilter{From: ptr(t0.Add(-time.Hour)), To: ptr(t0.Add(time.Hour))}, inc(nil), true},
	}
	for _, c := range cases {
		if got := c.f.Matches(c.inc); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
	f := IncidentFilter{Statuses: []Status{StatusOpen}, Severities: []Severity{SeverityLow}}
	for _, c := range []struct {
		st   Status
		sv   Severity
		want bool
	}{{StatusOpen, SeverityLow, true}, {StatusOpen, SeverityHigh, false}, {StatusClosed, SeverityLow, false}} {
		if f.MatchesCounted(c.st, c.sv) != c.want {
			t.Errorf("MatchesCounted(%s, %s)", c.st, c.sv)
		}
	}
}

// Rule: a list query has limit 1..100 and offset 0..1,000,000; a cursor
// (after or before) excludes offset and must come from the same sort and
// filter; backward pages exclude after and offset.
func TestIncidentQueryValidate(t *testing.T) {
	sort := Sort{SortTitle, false}
	filter := IncidentFilter{Statuses: []Status{StatusOpen}}
	own := &Cursor{Sort: sort.String(), Filter: filterDigest(&filter), ID: "inc_x"}
	otherSort := &Cursor{Sort: "title:desc", Filter: filterDigest(&filter), ID: "inc_x"}
	otherFilter := &Cursor{Sort: sort.String(), Filter: filterDigest(&IncidentFilter{}), ID: "inc_x"}
	limit := FieldError{"limit", "limit must be between 1 and 100"}
	offset := FieldError{"offset", "offset must be between 0 and 1000000"}
	withOffset := FieldError{"cursor", "cursor cannot be combined with offset"}
	foreign := FieldError{"cursor", "cursor does not belong to this query: use it with the sort and filters that produced it"}
	backward := FieldError{"before", "backward pages cannot be combined with after or offset"}
	q := func(change func(*IncidentQuery)) IncidentQuery {
		q := IncidentQuery{Filter: filter, Sort: sort, Limit: 20}
		change(&q)
		return q
	}
	cases := []struct {
		name string
		q    IncidentQuery
		want []FieldError
	}{
		{"plain", q(func(*IncidentQuery) {}), nil},
		{"limit 1", q(func(q *IncidentQuery) { q.Limit = 1 }), nil},
		{"limit 100", q(func(q *IncidentQuery) { q.Limit = 100 }), nil},
		{"limit 0", q(func(q *IncidentQuery) { q.Limit = 0 }), []FieldError{limit}},
		{"limit 101", q(func(q *IncidentQuery) { q.Limit = 101 }), []FieldError{limit}},
		{"offset at limit", q(func(q *IncidentQuery) { q.Offset = MaxOffset }), nil},
		{"offset -1", q(func(q *IncidentQuery) { q.Offset = -1 }), []FieldError{offset}},
		{"offset too deep", q(func(q *IncidentQuery) { q.Offset = MaxOffset + 1 }), []FieldError{offset}},
		{"own after cursor", q(func(q *IncidentQuery) { q.After = own }), nil},
		{"own before cursor, backward", q(func(q *IncidentQuery) { q.Before, q.Backward = own, true }), nil},
		{"backward from the end", q(func(q *IncidentQuery) { q.Backward = true }), nil},
		{"cursor with offset", q(func(q *IncidentQuery) { q.After, q.Offset = own, 1 }), []FieldError{withOffset}},
		{"cursor of another sort", q(func(q *IncidentQuery) { q.After = otherSort }), []FieldError{foreign}},
		{"cursor of another filter", q(func(q *IncidentQuery) { q.Before = otherFilter }), []FieldError{foreign}},
		{"both cursors foreign", q(func(q *IncidentQuery) { q.After, q.Before = otherSort, otherFilter }), []FieldError{foreign, foreign}},
		{"backward after", q(func(q *IncidentQuery) { q.Backward, q.After = true, own }), []FieldError{backward}},
		{"backward with offset", q(func(q *IncidentQuery) { q.Backward, q.Offset = true, 5 }), []FieldError{backward}},
		{"filter violations first", q(func(q *IncidentQuery) { q.Filter.Keyword, q.Limit = text(201), 0 }),
			[]FieldError{{"keyword", "keyword must be at most 200 characters"}, limit}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, c.q.Validate(), "Invalid query parameters", c.want)
		})
	}
}

// encodeWire builds a raw cursor, to test DecodeCursor's checks one by one.
func encodeWire(t *testing.T, w cursorWire) string {
	t.Helper()
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Rule: a cursor is at most 512 characters of base64url JSON, version 1,
// with an id, a valid sort and a key of the sort's kind (a rank 1..4 for
// severity and status, an RFC 3339 time for the time fields).
func TestDecodeCursor(t *testing.T) {
	bad := []FieldError{{"cursor", "cursor is invalid: pass pagination.nextCursor unchanged"}}
	good := cursorWire{V: 1, S: "severity:desc", F: "f", K: "4", I: "inc_x"}
	c, err := DecodeCursor(encodeWire(t, good))
	if err != nil || *c != (Cursor{Sort: "severity:desc", Filter: "f", KeyInt: 4, ID: "inc_x"}) {
		t.Fatalf("%+v %v", c, err)
	}
	for k, ok := range map[string]bool{"1": true, "4": true, "0": false, "5": false, "x": false, "": false} {
		w := good
		w.S, w.K = "status:asc", k
		c, err := DecodeCursor(encodeWire(t, w))
		if ok && (err != nil || c.KeyInt != int(k[0]-'0')) {
			t.Errorf("rank %q: %+v %v", k, c, err)
		}
		if !ok {
			wantInvalid(t, err, "Invalid query parameters", bad)
		}
	}
	when := time.Date(2024, 1, 15, 14, 30, 0, 123456000, time.UTC)
	c, err = DecodeCursor(encodeWire(t, cursorWire{V: 1, S: "createdAt:asc", K: when.Format(time.RFC3339Nano), I: "i"}))
	if err != nil || !c.KeyTime.Equal(when) || c.KeyInt != 0 || c.KeyString != "" {
		t.Errorf("time key: %+v %v", c, err)
	}
	c, err = DecodeCursor(encodeWire(t, cursorWire{V: 1, S: "title:asc", K: "", I: "i"}))
	if err != nil || c.KeyString != "" || c.Sort != "title:asc" {
		t.Errorf("empty title key: %+v %v", c, err)
	}

	for name, s := range map[string]string{
		"not base64":    "!!!",
		"not JSON":      base64.RawURLEncoding.EncodeToString([]byte("{")),
		"padded base64": base64.URLEncoding.EncodeToString([]byte(`{"v":1,"s":"title:asc","k":"","i":"i"}`)),
		"version 2":     encodeWire(t, cursorWire{V: 2, S: "title:asc", I: "i"}),
		"no id":         encodeWire(t, cursorWire{V: 1, S: "title:asc"}),
		"bad sort":      encodeWire(t, cursorWire{V: 1, S: "name:asc", I: "i"}),
		"bad time":      encodeWire(t, cursorWire{V: 1, S: "occurredAt:desc", K: "yesterday", I: "i"}),
	} {
		c, err := DecodeCursor(s)
		if c != nil {
			t.Errorf("%s: %+v", name, c)
		}
		wantInvalid(t, err, "Invalid query parameters", bad)
	}

	// Length: a 512-character cursor is read, a longer one is not even decoded.
	w := cursorWire{V: 1, S: "title:asc", I: "i"}
	for len(encodeWire(t, w)) < 512 {
		w.K += "a"
	}
	s := encodeWire(t, w)
	if len(s) != 512 {
		t.Fatalf("built a cursor of %d characters", len(s))
	}
	if c, err := DecodeCursor(s); err != nil || c.KeyString != w.K {
		t.Errorf("512 characters: %v", err)
	}
	w.K += "a"
	c, err = DecodeCursor(encodeWire(t, w))
	if c != nil || len(encodeWire(t, w)) <= 512 {
		t.Errorf("%d characters accepted", len(encodeWire(t, w)))
	}
	wantInvalid(t, err, "Invalid query parameters", bad)
	if !strings.HasPrefix(NewCursor(&IncidentQuery{Sort: DefaultSort}, base()), "eyJ") {
		t.Error("cursors are base64url JSON")
	}
}
