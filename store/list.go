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
	var query string
	var args []any
	if q.Offset >= deferredJoinOffset {
		// Deferred join: skip the offset rows on the index alone (an
		// index-only scan of ids), then fetch just the page's rows.
		query = fmt.Sprintf(`SELECT %s FROM incidents WHERE tenant_id = ? AND id IN
			(SELECT id FROM incidents WHERE %s ORDER BY %s LIMIT %d OFFSET %d) ORDER BY %s`,
			incidentColumns, w, order, q.Limit+1, q.Offset, order)
		args = append([]any{p.TenantID}, w.args...)
	} else {
		if c := key; c != nil {
			w.and(fmt.Sprintf("(%s, id) %s (?, ?)", col, cmp), cursorKey(q.Sort.Field, c), c.ID)
		}
		// LIMIT and OFFSET stay literals (validated integers): as parameters
		// they would let PostgreSQL's generic plan forget that a page is small.
		query = fmt.Sprintf(`SELECT %s FROM incidents WHERE %s ORDER BY %s LIMIT %d OFFSET %d`,
			incidentColumns, w, order, q.Limit+1, q.Offset)
		args = w.args
	}
	rows, err := x.s.queryIncidents(ctx, query, args...)
	if err != nil {
		return nil, model.Internal(err, "list incidents")
	}
	page := &model.IncidentPage{HasMore: len(rows) > q.Limit}
	if page.HasMore {
		rows = rows[:q.Limit]
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
	if page.TotalCount, err = x.count(ctx, p.TenantID, &q.Filter); err != nil {
		return nil, err
	}
	return page, nil
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

// filter returns the tenant scope and f's conditions. The NOT is_deleted
// term must stay literally as in the partial indexes' predicate.
func (x incidents) filter(tenant string, f *model.IncidentFilter) *where {
	w := &where{}
	w.and("tenant_id = ?", tenant)
	w.and("NOT is_deleted")
	if len(f.Statuses) > 0 {
		in(w, "status", f.Statuses)
	}
	if len(f.Severities) > 0 {
		in(w, "severity", f.Severities)
	}
	if f.Service != nil {
		w.and("service = ?", *f.Service)
	}
	if f.Keyword != "" {
		pattern := "%" + escapeLike(f.Keyword) + "%"
		if x.s.pg {
			w.and(`(title ILIKE ? ESCAPE '\' OR description ILIKE ? ESCAPE '\')`, pattern, pattern)
		} else {
			// SQLite's LIKE folds ASCII case only.
			w.and(`(title LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\')`, pattern, pattern)
		}
	}
	if f.From != nil {
		w.and("occurred_at >= ?", newDBTime(*f.From))
	}
	if f.To != nil {
		w.and("occurred_at <= ?", newDBTime(*f.To))
	}
	return w
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// count returns the exact number of live incidents matching f. Status and
// severity filters read the maintained counters; other filters count once
// per tenant generation and serve later requests from the cache.
func (x incidents) count(ctx context.Context, tenant string, f *model.IncidentFilter) (int, error) {
	if f.OnlyCounted() {
		w := &where{}
		w.and("tenant_id = ?", tenant)
		if len(f.Statuses) > 0 {
			in(w, "status", f.Statuses)
		}
		if len(f.Severities) > 0 {
			in(w, "severity", f.Severities)
		}
		n, err := x.s.scalar(ctx, "SELECT COALESCE(SUM(n), 0) FROM incident_counts WHERE "+w.String(), w.args...)
		if err != nil {
			return 0, model.Internal(err, "sum counters")
		}
		return int(n), nil
	}
	key := f.Key()
	before, err := x.s.generation(ctx, tenant)
	if err != nil {
		return 0, model.Internal(err, "count incidents")
	}
	if n, ok := x.s.counts.get(tenant, key, before); ok {
		return n, nil
	}
	w := x.filter(tenant, f)
	n, err := x.s.scalar(ctx, "SELECT count(*) FROM incidents WHERE "+w.String(), w.args...)
	if err != nil {
		return 0, model.Internal(err, "count incidents")
	}
	// Cache only if no write committed while counting: then the count saw
	// exactly the data of generation `before`.
	after, err := x.s.generation(ctx, tenant)
	if err == nil && after == before {
		x.s.counts.put(tenant, key, before, int(n))
	}
	return int(n), nil
}
