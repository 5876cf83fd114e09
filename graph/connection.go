package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// connectionQuery turns Relay (first/after, last/before) or page
// (limit/offset) arguments into the domain's list query.
func connectionQuery(filter *gqlmodel.IncidentFilter, orderBy *gqlmodel.IncidentOrder, first *int, after *string,
	last *int, before *string, limit *int, offset *int) (model.IncidentQuery, error) {
	q := model.IncidentQuery{Filter: filterIn(filter), Sort: model.DefaultSort, Limit: model.PageLimit(nil)}
	if orderBy != nil {
		q.Sort = model.Sort{Field: sortFields[orderBy.Field], Desc: orderBy.Direction == gqlmodel.SortDirectionDesc}
	}
	var errs []model.FieldError
	bad := func(field, msg string) { errs = append(errs, model.FieldError{Field: field, Message: msg}) }
	relay := first != nil || after != nil || last != nil || before != nil
	switch {
	case relay && (limit != nil || offset != nil):
		bad("limit", "limit/offset cannot be combined with first/after/last/before")
	case first != nil && last != nil:
		bad("last", "first and last cannot be combined")
	case first != nil && before != nil:
		bad("before", "before pages backward: use it with last, not first")
	case last != nil && after != nil:
		bad("after", "after pages forward: use it with first, not last")
	}
	for _, n := range []struct {
		name string
		v    *int
	}{{"first", first}, {"last", last}, {"limit", limit}} {
		if n.v != nil {
			q.Limit = model.PageLimit(n.v)
			errs = append(errs, model.CheckLimit(n.name, *n.v)...)
		}
	}
	if offset != nil {
		q.Offset = *offset
	}
	q.Backward = last != nil || before != nil
	for _, c := range []struct {
		name string
		v    *string
		dst  **model.Cursor
	}{{"after", after, &q.After}, {"before", before, &q.Before}} {
		if c.v == nil {
			continue
		}
		cur, err := model.DecodeCursor(*c.v)
		if err != nil {
			bad(c.name, c.name+" is not a cursor of this connection")
			continue
		}
		*c.dst = cur
	}
	if len(errs) > 0 {
		return q, model.Invalid("Invalid arguments", errs...)
	}
	return q, nil
}

func connection(q *model.IncidentQuery, page *model.IncidentPage) *gqlmodel.IncidentConnection {
	c := &gqlmodel.IncidentConnection{
		Edges:      make([]gqlmodel.IncidentEdge, len(page.Items)),
		Nodes:      make([]model.Incident, len(page.Items)),
		TotalCount: page.TotalCount,
		PageInfo:   &gqlmodel.PageInfo{},
	}
	for i, inc := range page.Items {
		c.Nodes[i] = *inc
		c.Edges[i] = gqlmodel.IncidentEdge{Cursor: model.NewCursor(q, inc), Node: inc}
	}
	if n := len(c.Edges); n > 0 {
		c.PageInfo.StartCursor = &c.Edges[0].Cursor
		c.PageInfo.EndCursor = &c.Edges[n-1].Cursor
	}
	if q.Backward {
		c.PageInfo.HasPreviousPage = page.HasMore
		c.PageInfo.HasNextPage = q.Before != nil
	} else {
		c.PageInfo.HasNextPage = page.HasMore
		c.PageInfo.HasPreviousPage = q.After != nil || q.Offset > 0
	}
	return c
}

// selects reports whether the current field's selection set asks for name,
// so that work nobody reads (a count) is skipped.
func selects(ctx context.Context, name string) bool {
	fields := graphql.CollectFieldsCtx(ctx, nil)
	return slices.ContainsFunc(fields, func(f graphql.CollectedField) bool { return f.Name == name })
}
