package model

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// List limits shared by every list of the platform.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// MaxOffset bounds offset paging; deeper pages should use cursors.
	MaxOffset     = 1_000_000
	MaxKeywordLen = 200
)

// PageLimit is a list's page size: n, or DefaultLimit when the caller gave
// none. Both doors take the default from here, so that it cannot drift.
func PageLimit(n *int) int {
	if n == nil {
		return DefaultLimit
	}
	return *n
}

// CheckLimit is the one page-size rule of every list, whichever door and
// argument carry it (REST's limit; GraphQL's first, last and limit), with
// the one message, named after that argument.
func CheckLimit(field string, n int) []FieldError {
	if n < 1 || n > MaxLimit {
		return []FieldError{{field, fmt.Sprintf("%s must be between 1 and %d", field, MaxLimit)}}
	}
	return nil
}

// CheckOffset is the offset rule of every offset-paged list.
func CheckOffset(n int) []FieldError {
	if n < 0 || n > MaxOffset {
		return []FieldError{{"offset", fmt.Sprintf("offset must be between 0 and %d", MaxOffset)}}
	}
	return nil
}

// SortField is a field incidents can be ordered by.
type SortField string

const (
	SortOccurredAt SortField = "occurredAt"
	SortCreatedAt  SortField = "createdAt"
	SortUpdatedAt  SortField = "updatedAt"
	SortSeverity   SortField = "severity"
	SortStatus     SortField = "status"
	SortTitle      SortField = "title"
)

// SortFields lists the sortable fields.
var SortFields = []SortField{SortOccurredAt, SortCreatedAt, SortUpdatedAt, SortSeverity, SortStatus, SortTitle}

// Sort is an order over incidents; ties are broken by id in the same direction.
type Sort struct {
	Field SortField
	Desc  bool
}

// DefaultSort is the incidents contract's occurredAt:desc.
var DefaultSort = Sort{Field: SortOccurredAt, Desc: true}

func (s Sort) String() string {
	if s.Desc {
		return string(s.Field) + ":desc"
	}
	return string(s.Field) + ":asc"
}

// ParseSort reads the seed's field:direction notation.
func ParseSort(v string) (Sort, error) {
	field, dir, ok := strings.Cut(v, ":")
	if !ok {
		dir = "asc"
	}
	if !slices.Contains(SortFields, SortField(field)) || (dir != "asc" && dir != "desc") {
		return Sort{}, Invalid("Invalid query parameters", FieldError{"sort",
			"sort must be field:direction with field one of: occurredAt, createdAt, updatedAt, severity, status, title and direction asc or desc"})
	}
	return Sort{Field: SortField(field), Desc: dir == "desc"}, nil
}

// IncidentFilter narrows a list. Empty members do not filter.
type IncidentFilter struct {
	Statuses   []Status   // any of
	Severities []Severity // any of
	Service    *string    // exact match
	Keyword    string     // case-insensitive substring of title or description
	From       *time.Time // occurredAt >= From
	To         *time.Time // occurredAt <= To
}

// Validate lists every violation in f.
func (f *IncidentFilter) Validate() []FieldError {
	var errs []FieldError
	for _, s := range f.Statuses {
		if !s.Valid() {
			errs = append(errs, FieldError{"status", "status must be one of: open, investigating, resolved, closed"})
			break
		}
	}
	for _, s := range f.Severities {
		if !s.Valid() {
			errs = append(errs, FieldError{"severity", "severity must be one of: critical, high, medium, low"})
			break
		}
	}
	if f.Service != nil {
		errs = append(errs, checkText("service", *f.Service, MaxServiceLen, false)...)
	}
	errs = append(errs, checkText("keyword", f.Keyword, MaxKeywordLen, false)...)
	if f.From != nil {
		errs = append(errs, checkTime("fromOccurredAt", *f.From)...)
	}
	if f.To != nil {
		errs = append(errs, checkTime("toOccurredAt", *f.To)...)
	}
	if f.From != nil && f.To != nil && f.From.After(*f.To) {
		errs = append(errs, FieldError{"fromOccurredAt", "fromOccurredAt must not be after toOccurredAt"})
	}
	return errs
}

// Key is a canonical form of f: equal filters have equal keys. It binds
// cursors to their query and keys cached counts.
func (f *IncidentFilter) Key() string {
	var b strings.Builder
	st := make([]string, 0, len(f.Statuses))
	for _, s := range f.Statuses {
		st = append(st, string(s))
	}
	sv := make([]string, 0, len(f.Severities))
	for _, s := range f.Severities {
		sv = append(sv, string(s))
	}
	slices.Sort(st)
	sv = slices.Compact(slices.Sorted(slices.Values(sv)))
	fmt.Fprintf(&b, "st=%s;sv=%s;", strings.Join(slices.Compact(st), ","), strings.Join(sv, ","))
	if f.Service != nil {
		fmt.Fprintf(&b, "svc=%q;", *f.Service)
	}
	if f.Keyword != "" {
		fmt.Fprintf(&b, "kw=%q;", Fold(f.Keyword))
	}
	if f.From != nil {
		fmt.Fprintf(&b, "from=%s;", NormalizeTime(*f.From).Format(time.RFC3339Nano))
	}
	if f.To != nil {
		fmt.Fprintf(&b, "to=%s;", NormalizeTime(*f.To).Format(time.RFC3339Nano))
	}
	return b.String()
}

// OnlyCounted reports whether f filters on nothing but status and severity,
// which one per-tenant tally of status x severity answers.
func (f *IncidentFilter) OnlyCounted() bool {
	return f.Service == nil && f.Keyword == "" && f.From == nil && f.To == nil
}

// Fold is the case folding of keyword search: Unicode lower case, code
// point by code point. The stores keep each incident's folded title and
// description and match the folded keyword as a plain substring, so that
// search, counts and Matches agree on both stores.
func Fold(s string) string { return strings.ToLower(s) }

// Matches reports whether inc passes f: the same rule the stores' SQL
// applies (counts rolled forward from events rely on the two agreeing).
// A deleted incident matches nothing.
func (f *IncidentFilter) Matches(inc *Incident) bool {
	if inc == nil || inc.IsDeleted {
		return false
	}
	return f.MatchesCounted(inc.Status, inc.Severity) && f.matchesRest(inc)
}

// MatchesCounted is Matches for the status and severity members alone.
func (f *IncidentFilter) MatchesCounted(st Status, sv Severity) bool {
	return (len(f.Statuses) == 0 || slices.Contains(f.Statuses, st)) &&
		(len(f.Severities) == 0 || slices.Contains(f.Severities, sv))
}

func (f *IncidentFilter) matchesRest(inc *Incident) bool {
	if f.Service != nil && (inc.Service == nil || *inc.Service != *f.Service) {
		return false
	}
	if f.Keyword != "" {
		kw := Fold(f.Keyword)
		if !strings.Contains(Fold(inc.Title), kw) && (inc.Description == nil || !strings.Contains(Fold(*inc.Description), kw)) {
			return false
		}
	}
	at := NormalizeTime(inc.OccurredAt)
	if f.From != nil && at.Before(NormalizeTime(*f.From)) {
		return false
	}
	if f.To != nil && at.After(NormalizeTime(*f.To)) {
		return false
	}
	return true
}

// IncidentQuery is one list request.
type IncidentQuery struct {
	Filter IncidentFilter
	Sort   Sort
	Limit  int
	Offset int
	// After continues a keyset walk; it excludes Offset.
	After *Cursor
	// Backward pages towards the start: the Limit items just before Before
	// (or the last Limit items when Before is nil), still returned in Sort
	// order. HasMore then says whether more items precede them.
	Backward bool
	Before   *Cursor
	// SkipCount leaves TotalCount at -1, for callers that do not show it.
	SkipCount bool
	// WithAffects fills IncidentPage.Affects, read with the page.
	WithAffects bool
}

// Validate checks limits and that a cursor belongs to this query.
func (q *IncidentQuery) Validate() error {
	errs := q.Filter.Validate()
	errs = append(errs, CheckLimit("limit", q.Limit)...)
	errs = append(errs, CheckOffset(q.Offset)...)
	for _, c := range []*Cursor{q.After, q.Before} {
		if c == nil {
			continue
		}
		if q.Offset != 0 {
			errs = append(errs, FieldError{"cursor", "cursor cannot be combined with offset"})
		}
		if c.Sort != q.Sort.String() || c.Filter != filterDigest(&q.Filter) {
			errs = append(errs, FieldError{"cursor", "cursor does not belong to this query: use it with the sort and filters that produced it"})
		}
	}
	if q.Backward && (q.After != nil || q.Offset != 0) {
		errs = append(errs, FieldError{"before", "backward pages cannot be combined with after or offset"})
	}
	if len(errs) > 0 {
		return Invalid("Invalid query parameters", errs...)
	}
	return nil
}

// IncidentPage is one page of a list.
type IncidentPage struct {
	Items []*Incident
	// TotalCount is -1 when the query asked to skip it.
	TotalCount int
	// HasMore says whether items follow the page (precede it, for a backward page).
	HasMore bool
	// NextCursor continues after the last item; empty when there is no more.
	NextCursor string
	// Affects are the items' affects by incident id (by component id), when
	// the query asked for them.
	Affects map[string][]Affect
}

// Cursor is a position in a keyset walk: the sort key and id of the last row
// seen, bound to the sort and filter that produced it.
type Cursor struct {
	Sort   string
	Filter string
	// Exactly one of the key members is meaningful, depending on the sort field.
	KeyTime   time.Time
	KeyInt    int
	KeyString string
	ID        string
}

type cursorWire struct {
	V int    `json:"v"`
	S string `json:"s"`
	F string `json:"f"`
	K string `json:"k"`
	I string `json:"i"`
}

const cursorVersion = 1

func filterDigest(f *IncidentFilter) string {
	sum := sha256.Sum256([]byte(f.Key()))
	return hex.EncodeToString(sum[:8])
}

// SortKey returns the value of inc under sort field f, as a cursor holds it.
func SortKey(inc *Incident, f SortField) (t time.Time, i int, s string) {
	switch f {
	case SortCreatedAt:
		return inc.CreatedAt, 0, ""
	case SortUpdatedAt:
		return inc.UpdatedAt, 0, ""
	case SortSeverity:
		return time.Time{}, inc.Severity.Rank(), ""
	case SortStatus:
		return time.Time{}, inc.Status.Rank(), ""
	case SortTitle:
		return time.Time{}, 0, inc.Title
	}
	return inc.OccurredAt, 0, ""
}

// NewCursor returns the opaque cursor that continues q after inc.
func NewCursor(q *IncidentQuery, inc *Incident) string {
	t, i, s := SortKey(inc, q.Sort.Field)
	w := cursorWire{V: cursorVersion, S: q.Sort.String(), F: filterDigest(&q.Filter), I: inc.ID}
	switch q.Sort.Field {
	case SortSeverity, SortStatus:
		w.K = strconv.Itoa(i)
	case SortTitle:
		w.K = s
	default:
		w.K = NormalizeTime(t).Format(time.RFC3339Nano)
	}
	raw, _ := json.Marshal(w) // a struct of strings and ints always marshals
	return base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeCursor parses an opaque cursor. It does not check that the cursor
// belongs to a query: IncidentQuery.Validate does.
func DecodeCursor(s string) (*Cursor, error) {
	bad := Invalid("Invalid query parameters", FieldError{"cursor", "cursor is invalid: pass pagination.nextCursor unchanged"})
	if len(s) > 512 {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var w cursorWire
	if err := json.Unmarshal(raw, &w); err != nil || w.V != cursorVersion || w.I == "" {
		return nil, bad
	}
	sort, err := ParseSort(w.S)
	if err != nil {
		return nil, bad
	}
	c := &Cursor{Sort: w.S, Filter: w.F, ID: w.I}
	switch sort.Field {
	case SortSeverity, SortStatus:
		c.KeyInt, err = strconv.Atoi(w.K)
		if err != nil || c.KeyInt < 1 || c.KeyInt > 4 {
			return nil, bad
		}
	case SortTitle:
		c.KeyString = w.K
	default:
		// A time no store holds was never written by NewCursor: the cursor
		// is damaged, and must not reach a query.
		c.KeyTime, err = time.Parse(time.RFC3339Nano, w.K)
		if err != nil || !TimeInRange(c.KeyTime) {
			return nil, bad
		}
	}
	return c, nil
}
