package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

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
	dir := "ASC"
	cmp := ">"
	if q.Sort.Desc {
		dir, cmp = "DESC", "<"
	}
	var rows []incidentRow
	sel := x.s.db.NewSelect().Model(&rows)
	x.filter(sel, p.TenantID, &q.Filter)
	if c := q.After; c != nil {
		sel.Where(fmt.Sprintf("(%s, id) %s (?, ?)", col, cmp), cursorKey(q.Sort.Field, c), c.ID)
	}
	sel.OrderExpr(fmt.Sprintf("%s %s, id %s", col, dir, dir)).Limit(int64(q.Limit) + 1).Offset(int64(q.Offset))
	if err := sel.Scan(ctx); err != nil {
		return nil, model.Internal(err, "list incidents")
	}
	page := &model.IncidentPage{HasMore: len(rows) > q.Limit}
	if page.HasMore {
		rows = rows[:q.Limit]
	}
	page.Items = make([]*model.Incident, len(rows))
	for i := range rows {
		page.Items[i] = rows[i].toModel()
	}
	if page.HasMore {
		page.NextCursor = model.NewCursor(&q, page.Items[len(page.Items)-1])
	}
	if q.After == nil && q.Offset == 0 && !page.HasMore {
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

// filter adds the tenant scope and f's conditions. The NOT is_deleted term
// must stay literally as in the partial indexes' predicate.
func (x incidents) filter(q *bun.SelectQuery, tenant string, f *model.IncidentFilter) {
	q.Where("tenant_id = ?", tenant).Where("NOT is_deleted")
	if len(f.Statuses) > 0 {
		q.Where("status IN (?)", bun.In(f.Statuses))
	}
	if len(f.Severities) > 0 {
		q.Where("severity IN (?)", bun.In(f.Severities))
	}
	if f.Service != nil {
		q.Where("service = ?", *f.Service)
	}
	if f.Keyword != "" {
		pattern := "%" + escapeLike(f.Keyword) + "%"
		if x.s.pg {
			q.Where(`(title ILIKE ? ESCAPE '\' OR description ILIKE ? ESCAPE '\')`, pattern, pattern)
		} else {
			// SQLite's LIKE folds ASCII case only.
			q.Where(`(title LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\')`, pattern, pattern)
		}
	}
	if f.From != nil {
		q.Where("occurred_at >= ?", newDBTime(*f.From))
	}
	if f.To != nil {
		q.Where("occurred_at <= ?", newDBTime(*f.To))
	}
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// count returns the exact number of live incidents matching f. Status and
// severity filters read the maintained counters; other filters count once
// per tenant generation and serve later requests from the cache.
func (x incidents) count(ctx context.Context, tenant string, f *model.IncidentFilter) (int, error) {
	if f.OnlyCounted() {
		q := x.s.db.NewSelect().Table("incident_counts").ColumnExpr("COALESCE(SUM(n), 0)").
			Where("tenant_id = ?", tenant)
		if len(f.Statuses) > 0 {
			q.Where("status IN (?)", bun.In(f.Statuses))
		}
		if len(f.Severities) > 0 {
			q.Where("severity IN (?)", bun.In(f.Severities))
		}
		var n int
		if err := q.Scan(ctx, &n); err != nil {
			return 0, model.Internal(err, "sum counters")
		}
		return n, nil
	}
	key := f.Key()
	before, err := generation(ctx, x.s.db, tenant)
	if err != nil {
		return 0, model.Internal(err, "count incidents")
	}
	if n, ok := x.s.counts.get(tenant, key, before); ok {
		return n, nil
	}
	q := x.s.db.NewSelect().Model((*incidentRow)(nil))
	x.filter(q, tenant, f)
	n, err := q.Count(ctx)
	if err != nil {
		return 0, model.Internal(err, "count incidents")
	}
	// Cache only if no write committed while counting: then the count saw
	// exactly the data of generation `before`.
	after, err := generation(ctx, x.s.db, tenant)
	if err == nil && after == before {
		x.s.counts.put(tenant, key, before, int(n))
	}
	return int(n), nil
}
