package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/incidentd/incidentd/model"
)

// deferredJoinOffset is where offset pages switch to a deferred join.
const deferredJoinOffset = 100

// sortColumns maps sort fields to the indexed columns that order them.
var sortColumns = map[model.SortField]string{
	model.SortOccurredAt: "occurred_at",
	model.SortCreatedAt:  "created_at",
	model.SortUpdatedAt:  "updated_at",
	model.SortSeverity:   "severity_rank",
	model.SortStatus:     "status_rank",
	model.SortTitle:      "title",
}

func (x incidents) List(ctx context.Context, q model.IncidentQuery) (*model.IncidentPage, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	if q.Sort.Field == "" {
		q.Sort = model.DefaultSort
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	col := sortColumns[q.Sort.Field]
	desc, key := q.Sort.Desc, q.After
	if q.Backward {
		// Walk the other way from Before, then put the page back in order.
		desc, key = !desc, q.Before
	}
	dir, cmp := "ASC", ">"
	if desc {
		dir, cmp = "DESC", "<"
	}
	order := fmt.Sprintf("%s %s, id %s", col, dir, dir)
	w := x.filter(p.TenantID, &q.Filter)
	columns := incidentColumns
	if q.WithAffects {
		columns += ", " + x.s.affectsColumn() // in the page's statement: one round trip
	}
	var query string
	if q.Offset >= deferredJoinOffset {
		// Deferred join: skip the offset rows on the index alone (an
		// index-only scan of ids), then fetch just the page's rows.
		query = fmt.Sprintf(`SELECT %s FROM incidents WHERE tenant_id = $1 AND id IN
			(SELECT id FROM incidents WHERE %s ORDER BY %s LIMIT %s OFFSET %s) ORDER BY %s`,
			columns, w, order, w.arg(q.Limit+1), w.arg(q.Offset), order)
	} else {
		if c := key; c != nil {
			w.and(fmt.Sprintf("(%s, id) %s (%s, %s)", col, cmp, w.arg(cursorKey(q.Sort.Field, c)), w.arg(c.ID)))
		}
		query = fmt.Sprintf(`SELECT %s FROM incidents WHERE %s ORDER BY %s LIMIT %s OFFSET %s`,
			columns, w, order, w.arg(q.Limit+1), w.arg(q.Offset))
	}
	var found []incidentRow
	var affects [][]model.Affect
	scan := func(r rows) error {
		var err error
		found, affects, err = scanIncidentsWith(r, q.WithAffects)
		return err
	}
	var check *countCheck
	if q.Filter.Keyword != "" && !x.s.common(p.TenantID, &q.Filter) {
		// Planned with its values: a generic plan cannot know how many rows
		// a keyword matches (a rare one is best found through the trigram
		// index, a common one by walking the sort order). A keyword the
		// cached counts know to be common takes the generic plan below.
		var r rows
		if r, err = x.s.query(ctx, query, append([]any{planEach{}}, w.args...)...); err == nil {
			err = scan(r)
			r.Close()
		}
	} else {
		// A cached count is checked in the same round trip as the page.
		var st *stmt
		if !q.SkipCount {
			check, st = x.s.precheck(p.TenantID, &q.Filter)
		}
		stmts := []stmt{{query, w.args}}
		if st != nil {
			stmts = append(stmts, *st)
		}
		err = x.s.pipeline(ctx, func(i int, r rows) error {
			if i == 1 {
				return check.scan(r)
			}
			return scan(r)
		}, stmts...)
	}
	if err != nil {
		return nil, model.Internal(err, "list incidents")
	}
	rows := found
	page := &model.IncidentPage{HasMore: len(rows) > q.Limit}
	if page.HasMore {
		rows = rows[:q.Limit]
	}
	if q.WithAffects {
		page.Affects = make(map[string][]model.Affect, len(rows))
		for i := range rows {
			page.Affects[rows[i].ID] = affects[i]
		}
	}
	if q.Backward {
		slices.Reverse(rows)
	}
	page.Items = make([]*model.Incident, len(rows))
	for i := range rows {
		page.Items[i] = rows[i].toModel()
	}
	if page.HasMore && !q.Backward {
		page.NextCursor = model.NewCursor(&q, page.Items[len(page.Items)-1])
	}
	if q.SkipCount {
		page.TotalCount = -1
		return page, nil
	}
	if q.After == nil && q.Before == nil && q.Offset == 0 && !page.HasMore {
		// The whole result is on this page: no count needed.
		page.TotalCount = len(rows)
		return page, nil
	}
	if page.TotalCount, err = x.s.count(ctx, p.TenantID, &q.Filter, check); err != nil {
		return nil, err
	}
	return page, nil
}

// commonShare: a filter matching at least 1 in this many live incidents
// is common; walking the sort order finds a page of it quickly.
const commonShare = 50

// common reports whether the cached counts show that f matches a large
// share of the tenant's incidents (unknown: not common).
func (s *Store) common(tenant string, f *model.IncidentFilter) bool {
	n, _, _, _, ok := s.counts.lookup(countKeyOf(tenant, f), f)
	all, _, _, _, okAll := s.counts.lookup(countKey{tenant: tenant}, &model.IncidentFilter{})
	return ok && okAll && n*commonShare >= all
}

func cursorKey(f model.SortField, c *model.Cursor) any {
	switch f {
	case model.SortSeverity, model.SortStatus:
		return c.KeyInt
	case model.SortTitle:
		return c.KeyString
	}
	return newDBTime(c.KeyTime)
}

// filter returns the tenant scope and f's conditions; the tenant is always
// $1. The NOT is_deleted term must stay literally as in the partial
// indexes' predicate. model.IncidentFilter.Matches is the same rule in Go.
func (x incidents) filter(tenant string, f *model.IncidentFilter) *where {
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	w.and("NOT is_deleted")
	if len(f.Statuses) > 0 {
		in(w, "status", f.Statuses)
	}
	if len(f.Severities) > 0 {
		in(w, "severity", f.Severities)
	}
	if f.Service != nil {
		w.and("service = " + w.arg(*f.Service))
	}
	if f.Keyword != "" {
		// Folded columns and a folded keyword: the same comparison on both
		// stores, whatever their own case rules.
		pattern := w.arg("%" + escapeLike(model.Fold(f.Keyword)) + "%")
		w.and(`(title_fold LIKE ` + pattern + ` ESCAPE '\' OR description_fold LIKE ` + pattern + ` ESCAPE '\')`)
	}
	if f.From != nil {
		w.and("occurred_at >= " + w.arg(newDBTime(*f.From)))
	}
	if f.To != nil {
		w.and("occurred_at <= " + w.arg(newDBTime(*f.To)))
	}
	return w
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
