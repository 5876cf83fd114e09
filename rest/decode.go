package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

// MaxBodyBytes bounds request bodies; larger ones get 413.
const MaxBodyBytes = 1 << 20

// errBodyTooLarge and errMediaType are transport failures with their own status.
var (
	errBodyTooLarge = errors.New("body too large")
	errMediaType    = errors.New("unsupported media type")
)

// readObject reads a JSON object body into its raw members. Bad JSON is
// invalid; the caller maps errBodyTooLarge and errMediaType.
func readObject(r *http.Request) (map[string]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, errMediaType
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, model.Invalid("Invalid request body: could not read it")
	}
	if len(body) > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	return decodeObject(body)
}

func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, model.Invalid("Invalid request body: a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, model.Invalid("Invalid request body: " + jsonProblem(err))
	}
	if obj == nil {
		return nil, model.Invalid("Invalid request body: a JSON object is required")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, model.Invalid("Invalid request body: unexpected data after the JSON object")
	}
	return obj, nil
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return "a JSON object is required"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return "malformed JSON"
}

// fields decodes the members of one JSON object, collecting every problem.
type fields struct {
	raw  map[string]json.RawMessage
	errs []model.FieldError
}

func newFields(raw map[string]json.RawMessage, allowed ...string) *fields {
	f := &fields{raw: raw}
	var unknown []string
	for k := range raw {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		f.fail(k, "unknown field "+k)
	}
	return f
}

func (f *fields) fail(field, msg string) {
	f.errs = append(f.errs, model.FieldError{Field: field, Message: msg})
}

func (f *fields) failed(field string) bool {
	return slices.ContainsFunc(f.errs, func(e model.FieldError) bool {
		return e.Field == field || strings.HasPrefix(e.Field, field+"[")
	})
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// str reads a string member.
func (f *fields) str(name string) model.Optional[string] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[string]{}
	}
	if isNull(raw) {
		return model.Null[string]()
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.fail(name, name+" must be a string")
		return model.Optional[string]{}
	}
	return model.Some(s)
}

// time reads an RFC 3339 date-time member.
func (f *fields) time(name string) model.Optional[time.Time] {
	s := f.str(name)
	if !s.Set || s.Null {
		return model.Optional[time.Time]{Set: s.Set, Null: s.Null}
	}
	t, err := time.Parse(time.RFC3339Nano, s.Value)
	if err != nil {
		f.fail(name, name+" must be an RFC 3339 date-time, e.g. 2024-01-15T14:30:00Z")
		return model.Optional[time.Time]{}
	}
	return model.Some(t)
}

// strings reads an array-of-strings member.
func (f *fields) strings(name string) model.Optional[[]string] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[[]string]{}
	}
	if isNull(raw) {
		return model.Null[[]string]()
	}
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil {
		f.fail(name, name+" must be an array of strings")
		return model.Optional[[]string]{}
	}
	if v == nil {
		v = []string{}
	}
	return model.Some(v)
}

// integer reads an integral JSON number member.
func (f *fields) integer(name string) model.Optional[int] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[int]{}
	}
	if isNull(raw) {
		return model.Null[int]()
	}
	n, ok := parseInt(raw)
	if !ok {
		f.fail(name, name+" must be an integer")
		return model.Optional[int]{}
	}
	return model.Some(n)
}

// wideInteger reads an integral JSON number member for a field whose model
// rule states its own range: a number beyond int64 is held as the nearest
// int64, which that rule then refuses with its range message, where a
// conversion would wrap into range.
func (f *fields) wideInteger(name string) model.Optional[int64] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[int64]{}
	}
	if isNull(raw) {
		return model.Null[int64]()
	}
	n, ok := parseInt64(raw)
	if !ok {
		f.fail(name, name+" must be an integer")
		return model.Optional[int64]{}
	}
	return model.Some(n)
}

// parseInt reads an integral JSON number within ±1e9 (no fractions, no
// strings), which every integer field here fits.
func parseInt(raw json.RawMessage) (int, bool) {
	n, ok := parseInt64(raw)
	if !ok || n < -1e9 || n > 1e9 {
		return 0, false
	}
	return int(n), true
}

// parseInt64 reads an integral JSON number (no fractions, no exponents, no
// strings), saturating at the int64 bounds.
func parseInt64(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == '"' { // json.Number would take a quoted number
		return 0, false
	}
	var num json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&num); err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // on ErrRange, n is the nearest bound
		return 0, false
	}
	return n, true
}

// phase reads the status-page model's {"generation", "order"} member.
func (f *fields) phase(name string) model.Optional[model.PhaseRef] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[model.PhaseRef]{}
	}
	if isNull(raw) {
		return model.Null[model.PhaseRef]()
	}
	obj, err := decodeObject(raw)
	if err != nil {
		f.fail(name, name+" must be an object {generation, order} or null")
		return model.Optional[model.PhaseRef]{}
	}
	sub := newFields(obj, "generation", "order")
	var ref model.PhaseRef
	for _, m := range []struct {
		field string
		into  *int
	}{{"generation", &ref.Generation}, {"order", &ref.Order}} {
		v := sub.integer(m.field)
		switch {
		case sub.failed(m.field):
		case !v.Set || v.Null:
			sub.fail(m.field, m.field+" is required")
		default:
			*m.into = v.Value
		}
	}
	for _, e := range sub.errs {
		f.fail(name+"."+e.Field, name+"."+e.Message)
	}
	if len(sub.errs) > 0 {
		return model.Optional[model.PhaseRef]{}
	}
	return model.Some(ref)
}

// affects reads the status-page model's [{"reference", "type", "severity"}] member.
func (f *fields) affects(name string) model.Optional[[]model.AffectInput] {
	raw, ok := f.raw[name]
	if !ok {
		return model.Optional[[]model.AffectInput]{}
	}
	if isNull(raw) {
		return model.Null[[]model.AffectInput]()
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		f.fail(name, name+" must be an array of {reference, type, severity} objects")
		return model.Optional[[]model.AffectInput]{}
	}
	if len(items) > model.MaxAffects {
		f.fail(name, fmt.Sprintf("%s must have at most %d items", name, model.MaxAffects))
		return model.Optional[[]model.AffectInput]{}
	}
	out := make([]model.AffectInput, 0, len(items))
	bad := false
	for i, item := range items {
		field := fmt.Sprintf("%s[%d]", name, i)
		obj, err := decodeObject(item)
		if err != nil {
			f.fail(field, field+" must be an object {reference, type, severity}")
			bad = true
			continue
		}
		sub := newFields(obj, "reference", "type", "severity")
		a := model.AffectInput{ComponentID: sub.str("reference").Value, TypeID: sub.str("type").Value}
		if sev := sub.integer("severity"); sev.Set && !sev.Null {
			a.Severity = &sev.Value
		}
		for _, e := range sub.errs {
			f.fail(field+"."+e.Field, field+"."+e.Message)
			bad = true
		}
		out = append(out, a)
	}
	if bad {
		return model.Optional[[]model.AffectInput]{}
	}
	return model.Some(out)
}

func ptr[T any](o model.Optional[T]) *T {
	if !o.Set || o.Null {
		return nil
	}
	return &o.Value
}

// merge adds validation errors for the fields that decoded, so a field with
// a wrong JSON type is reported once, for its type.
func (f *fields) merge(errs []model.FieldError) []model.FieldError {
	out := append([]model.FieldError(nil), f.errs...)
	for _, e := range errs {
		if !f.failed(strings.SplitN(e.Field, "[", 2)[0]) {
			out = append(out, e)
		}
	}
	return out
}

var createFields = []string{"title", "description", "severity", "occurredAt", "service", "tags", "status", "phase", "affects"}

// decodeCreate turns a body into an IncidentCreate, listing every problem.
func decodeCreate(raw map[string]json.RawMessage) (model.IncidentCreate, error) {
	f := newFields(raw, createFields...)
	title := f.str("title")
	sev := f.str("severity")
	status := f.str("status")
	occ := f.time("occurredAt")
	tags := f.strings("tags")
	affects := f.affects("affects")
	in := model.IncidentCreate{
		Phase:       ptr(f.phase("phase")),
		Affects:     affects.Value,
		Title:       title.Value,
		Description: ptr(f.str("description")),
		Severity:    model.Severity(sev.Value),
		Status:      model.Status(status.Value),
		Service:     ptr(f.str("service")),
		Tags:        tags.Value,
		OccurredAt:  occ.Value,
	}
	for name, o := range map[string]model.Optional[string]{"title": title, "severity": sev, "status": status} {
		if o.Null {
			f.fail(name, name+" cannot be null")
		}
	}
	if occ.Null {
		f.fail("occurredAt", "occurredAt cannot be null")
	}
	if tags.Null {
		f.fail("tags", "tags cannot be null")
	}
	if affects.Null {
		f.fail("affects", "affects cannot be null")
	}
	if len(f.errs) == 0 {
		return in, nil
	}
	return in, model.Invalid("Invalid request body", sortDetails(f.merge(in.Validate()))...)
}

var patchFields = []string{"title", "description", "severity", "status", "service", "tags", "occurredAt", "resolvedAt", "phase", "affects"}

// decodePatch turns a body into an IncidentPatch, listing every problem.
func decodePatch(raw map[string]json.RawMessage) (model.IncidentPatch, error) {
	f := newFields(raw, patchFields...)
	sev := f.str("severity")
	status := f.str("status")
	p := model.IncidentPatch{
		Title:       f.str("title"),
		Description: f.str("description"),
		Severity:    model.Optional[model.Severity]{Set: sev.Set, Null: sev.Null, Value: model.Severity(sev.Value)},
		Status:      model.Optional[model.Status]{Set: status.Set, Null: status.Null, Value: model.Status(status.Value)},
		Service:     f.str("service"),
		Tags:        f.strings("tags"),
		OccurredAt:  f.time("occurredAt"),
		ResolvedAt:  f.time("resolvedAt"),
		Phase:       f.phase("phase"),
		Affects:     f.affects("affects"),
	}
	if len(f.errs) == 0 {
		return p, nil
	}
	return p, model.Invalid("Invalid request body", sortDetails(f.merge(p.Validate()))...)
}

// decodeReplace reads a PUT body: title, severity, status and occurredAt
// are required; description, service, tags, phase and affects absent are
// cleared (resolvedAt absent follows the lifecycle rules). The result is the patch that sets every field.
func decodeReplace(raw map[string]json.RawMessage) (model.IncidentPatch, error) {
	var missing []model.FieldError
	for _, name := range []string{"title", "severity", "status", "occurredAt"} {
		if _, ok := raw[name]; !ok {
			missing = append(missing, model.FieldError{Field: name, Message: name + " is required: PUT replaces the whole incident"})
		}
	}
	p, err := decodePatch(raw)
	if err != nil || len(missing) > 0 {
		var details []model.FieldError
		if err != nil {
			details = model.AsError(err).Details
		}
		return p, model.Invalid("Invalid request body", sortDetails(append(missing, details...))...)
	}
	for _, o := range []*model.Optional[string]{&p.Description, &p.Service} {
		if !o.Set {
			*o = model.Null[string]()
		}
	}
	if !p.Tags.Set {
		p.Tags = model.Some([]string{})
	}
	// resolvedAt left out follows the lifecycle rules (stamped on
	// resolving, cleared on reopening), as it does on PATCH.
	if !p.Phase.Set {
		p.Phase = model.Null[model.PhaseRef]()
	}
	if !p.Affects.Set {
		p.Affects = model.Some([]model.AffectInput{})
	}
	return p, nil
}

// sortDetails orders details by field so that answers are stable.
func sortDetails(d []model.FieldError) []model.FieldError {
	slices.SortStableFunc(d, func(a, b model.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return d
}

// readAuthorized checks scope first (so that a caller without it gets 403,
// not a 400 about a body it may not send at all; the service checks again),
// then reads the JSON object body. On failure it has answered already.
func readAuthorized(w http.ResponseWriter, r *http.Request, scope model.Scope) (map[string]json.RawMessage, bool) {
	if _, err := model.Authorize(r.Context(), scope); err != nil {
		writeError(w, r, err)
		return nil, false
	}
	raw, err := readObject(r)
	if err != nil {
		writeBodyError(w, r, err)
		return nil, false
	}
	return raw, true
}

// intParam reads an integer query value; a malformed one becomes -1, which
// the query's own validation rejects with its range message.
func intParam(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}
