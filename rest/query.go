package rest

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

// paramKind says how a query parameter is read.
type paramKind int

const (
	// scalar: one value; given twice it is a 400 ("x must be given once"),
	// since silently keeping one of them would answer a question not asked.
	scalar paramKind = iota
	// list: every occurrence counts, and each occurrence is split on commas
	// (splitList), so `status=open,closed` and `status=open&status=closed` agree.
	list
)

// params names a route's query parameters and how each is read; a name
// not in it is refused, so that a misspelt filter is never silently ignored.
type params map[string]paramKind

// query is a request's query string read by the one rule of every route
// (README "Lists"): unknown names are a 400, an empty value counts as
// absent, a scalar is given at most once, a list takes every occurrence
// split on commas, and limit/offset follow the model's page rules.
// Handlers read values from it, add their own complaints, then call err
// once: every problem of the request is answered together.
type query struct {
	values map[string][]string // non-empty values; lists already split
	errs   []model.FieldError
}

// readQuery applies the rule's structural part (names, repeats, empties,
// list splitting) to values, for a route taking known.
func readQuery(values url.Values, known params) *query {
	q := &query{values: map[string][]string{}}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		kind, ok := known[name]
		if !ok {
			q.fail(name, "unknown query parameter "+name)
			continue
		}
		var vs []string
		for _, v := range values[name] {
			if kind == list {
				items, ok := splitList(v)
				if !ok {
					q.fail(name, name+` has an unterminated or misplaced double quote: quote a whole value, e.g. "a,b"`)
				}
				vs = append(vs, items...)
			} else if v != "" {
				vs = append(vs, v)
			}
		}
		if kind == scalar && len(vs) > 1 {
			q.fail(name, name+" must be given once")
			continue
		}
		if len(vs) > 0 {
			q.values[name] = vs
		}
	}
	return q
}

// splitList splits one occurrence of a list parameter on commas. Spaces
// around a value are dropped and empty values count as absent. A value
// containing a comma is written in double quotes, a double quote inside
// it doubled (CSV's quoting: `"Billing, EU",web`); a quote elsewhere in
// an unquoted value is an ordinary character. ok is false for a quoted
// value that is unterminated or followed by more than spaces.
func splitList(v string) (items []string, ok bool) {
	for rest, more := v, true; more; {
		var item string
		if t := strings.TrimLeft(rest, " "); strings.HasPrefix(t, `"`) {
			var b strings.Builder
			t = t[1:]
			for {
				i := strings.IndexByte(t, '"')
				if i < 0 {
					return items, false
				}
				b.WriteString(t[:i])
				t = t[i+1:]
				if !strings.HasPrefix(t, `"`) {
					break
				}
				b.WriteByte('"')
				t = t[1:]
			}
			item = b.String()
			t = strings.TrimLeft(t, " ")
			if t != "" && t[0] != ',' {
				return items, false
			}
			rest, more = strings.CutPrefix(t, ",")
		} else {
			item, rest, more = strings.Cut(rest, ",")
			item = strings.TrimSpace(item)
		}
		if item != "" {
			items = append(items, item)
		}
	}
	return items, true
}

// get returns a scalar's value.
func (q *query) get(name string) (string, bool) {
	vs, ok := q.values[name]
	if !ok {
		return "", false
	}
	return vs[0], true
}

// str returns a scalar's value, "" when absent.
func (q *query) str(name string) string {
	v, _ := q.get(name)
	return v
}

// list returns a list's values, nil when absent.
func (q *query) list(name string) []string { return q.values[name] }

// limit returns the page size: the model's default when absent, checked
// by the model's one rule otherwise (a malformed number gets its message).
func (q *query) limit() int {
	v, ok := q.get("limit")
	if !ok {
		return model.PageLimit(nil)
	}
	n := intParam(v)
	q.add(model.CheckLimit("limit", n)...)
	return n
}

// offset returns the offset, 0 when absent, checked by the model's rule.
func (q *query) offset() int {
	v, ok := q.get("offset")
	if !ok {
		return 0
	}
	n := intParam(v)
	q.add(model.CheckOffset(n)...)
	return n
}

// dateTime returns a date-time parameter, nil when absent or malformed (then
// complained about).
func (q *query) dateTime(name string) *time.Time {
	v, ok := q.get(name)
	if !ok {
		return nil
	}
	t, ok := parseQueryTime(v)
	if !ok {
		q.fail(name, name+" must be an RFC 3339 date-time, e.g. 2024-01-15T14:30:00Z")
		return nil
	}
	return &t
}

func (q *query) fail(field, msg string) {
	q.errs = append(q.errs, model.FieldError{Field: field, Message: msg})
}

func (q *query) add(errs ...model.FieldError) { q.errs = append(q.errs, errs...) }

// err is the request's 400 listing every problem, or nil.
func (q *query) err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return model.Invalid("Invalid query parameters", sortDetails(q.errs)...)
}

// noQuery refuses any query parameter on a route that takes none (by the
// same rule, with no names known). On a problem it has answered.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	if err := readQuery(r.URL.Query(), nil).err(); err != nil {
		writeError(w, r, err)
		return false
	}
	return true
}

var incidentParams = params{"status": list, "severity": list, "service": scalar, "keyword": scalar, "fromOccurredAt": scalar,
	"toOccurredAt": scalar, "limit": scalar, "offset": scalar, "sort": scalar, "cursor": scalar}

// parseIncidentQuery reads the incidents contract's list parameters plus
// cursor, listing every problem.
func parseIncidentQuery(values url.Values) (model.IncidentQuery, error) {
	p := readQuery(values, incidentParams)
	q := model.IncidentQuery{Sort: model.DefaultSort, Limit: p.limit(), Offset: p.offset()}
	for _, s := range p.list("status") {
		q.Filter.Statuses = append(q.Filter.Statuses, model.Status(s))
	}
	for _, s := range p.list("severity") {
		q.Filter.Severities = append(q.Filter.Severities, model.Severity(s))
	}
	if v, ok := p.get("service"); ok {
		q.Filter.Service = &v
	}
	q.Filter.Keyword = p.str("keyword")
	q.Filter.From, q.Filter.To = p.dateTime("fromOccurredAt"), p.dateTime("toOccurredAt")
	if v, ok := p.get("sort"); ok {
		s, err := model.ParseSort(v)
		if err != nil {
			p.add(model.AsError(err).Details...)
		}
		q.Sort = s
	}
	if v, ok := p.get("cursor"); ok {
		c, err := model.DecodeCursor(v)
		if err != nil {
			p.add(model.AsError(err).Details...)
		}
		q.After = c
	}
	if err := p.err(); err != nil {
		return q, err
	}
	return q, q.Validate()
}

// parseQueryTime accepts RFC 3339, also when an unencoded '+' of the offset
// arrived as a space.
func parseQueryTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && strings.Contains(v, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	}
	return t, err == nil
}
