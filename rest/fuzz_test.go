package rest

import (
	"net/url"
	"testing"

	"github.com/incidentd/incidentd/model"
)

// The decoders must answer any input with a value or a domain error of code
// invalid: never a panic, never another kind of error.

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z"}`,
		`{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z","tags":["a"],"service":"s","description":null}`,
		`{"title":1,"tags":[1],"x":{}}`, `[]`, `null`, `{"title":"\u0000"}`, `{"occurredAt":"0000-01-01T00:00:00+01:00"}`,
		`{"title":"t","severity":"low","occurredAt":"2024-01-15T14:30:00Z","phase":{"generation":1,"order":0},"affects":[{"reference":"cmp_a","type":"imp_major"},{"reference":"cmp_b","type":"imp_x","severity":40}]}`,
		`{"phase":{"generation":1.5,"order":"0","x":1},"affects":[{"reference":"a","reference":"b"},1,{"severity":1e99}]}`,
		`{"phase":[],"affects":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeObject(body)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		in, err := decodeCreate(raw)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		if _, err := model.NewIncident(in, "inc_x", "t", "a", in.OccurredAt); err != nil {
			if c := model.ErrorCode(err); c != model.CodeInvalid && c != model.CodeBusinessRule {
				t.Fatalf("NewIncident: %v", err)
			}
		}
	})
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{
		`{"status":"resolved","resolvedAt":"2024-01-15T16:45:00Z"}`, `{"resolvedAt":null,"description":null}`,
		`{"tags":null}`, `{"severity":5}`, `{}`,
		`{"phase":null,"affects":[]}`, `{"phase":{"generation":-1,"order":-1},"affects":null}`,
		`{"affects":[{"reference":"cmp_a","type":"imp_minor","severity":101},{"reference":"cmp_a","type":""}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeObject(body)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		p, err := decodePatch(raw)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		cur := &model.Incident{Title: "t", Severity: model.SeverityLow, Status: model.StatusOpen, Tags: []string{}}
		if _, _, err := model.ApplyPatch(cur, p, "a", cur.OccurredAt); err != nil {
			if c := model.ErrorCode(err); c != model.CodeInvalid && c != model.CodeBusinessRule {
				t.Fatalf("ApplyPatch: %v", err)
			}
		}
	})
}

func FuzzParseIncidentQuery(f *testing.F) {
	for _, s := range []string{
		"status=open,closed&severity=high&limit=5&offset=3&sort=title:asc",
		"keyword=db&fromOccurredAt=2024-01-01T00:00:00Z&toOccurredAt=2024-02-01T00:00:00%2B01:00",
		"cursor=eyJ2IjoxfQ&limit=0", "sort=severity", "limit=1&limit=2", "x=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return // the server sees only what net/url parsed
		}
		q, err := parseIncidentQuery(values)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		if q.Limit < 1 || q.Limit > model.MaxLimit || q.Offset < 0 || q.Offset > model.MaxOffset {
			t.Fatalf("accepted out-of-range query %+v", q)
		}
	})
}

func mustBeInvalid(t *testing.T, err error) {
	t.Helper()
	e := model.AsError(err)
	if e.Code != model.CodeInvalid || e.Message == "" {
		t.Fatalf("want an invalid error, got %v", err)
	}
}

func FuzzDecodeReport(f *testing.F) {
	for _, s := range []string{
		`{"name":"Component 1","impact":"minor","attributes":[{"name":"region","value":"Reg1"}]}`,
		`{"name":"x","impact":3}`, `{"name":"x","impact":"severe","attributes":[{"name":1}]}`, `{"impact":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeObject(body)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		rep, err := decodeReport(raw)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		if rep.Impact < model.ImpactMaintenance || rep.Impact > model.ImpactOutage || rep.Name == "" {
			t.Fatalf("accepted %+v", rep)
		}
	})
}

func FuzzDecodeCatalogue(f *testing.F) {
	for _, s := range []string{
		`{"displayName":"Degraded","value":40}`, `{"displayName":"Performance","description":"slow"}`,
		`{"value":-1}`, `{"value":1.5}`, `{"value":"7"}`, `{"displayName":null,"value":null}`, `{"phases":["a","A"]}`,
		`{"phases":[]}`, `{"phases":null}`, `{"phases":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeObject(body)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		for _, create := range []bool{true, false} {
			if in, err := decodeSeverity(raw, create); err != nil {
				mustBeInvalid(t, err)
			} else if errs := in.Validate(create); len(errs) == 0 && in.Value.Set && (in.Value.Value < 0 || in.Value.Value > 100) {
				t.Fatalf("accepted severity %+v", in)
			}
			if _, err := decodeImpactType(raw, create); err != nil {
				mustBeInvalid(t, err)
			}
		}
		f := newFields(raw, "phases")
		if names := f.strings("phases"); len(f.errs) == 0 && len(model.ValidatePhases(names.Value)) == 0 && (len(names.Value) == 0 || len(names.Value) > model.MaxPhases) {
			t.Fatalf("accepted phases %q", names.Value)
		}
	})
}
