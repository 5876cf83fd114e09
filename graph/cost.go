package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/99designs/gqlgen/graphql"

	"github.com/incidentd/incidentd/model"
)

// listBound is how many items a field can answer: the one rule that both
// bounds what its resolver returns and prices it for the complexity limit.
type listBound struct {
	// max is the most items the field can answer (a model limit).
	max int
	// def is the size when no size argument is given; 0 means max (a list
	// with no argument always answers up to max).
	def int
	// args name the arguments asking for a size (first, last, limit), or
	// listing what to answer (one item each: the ids of uptime).
	args []string
	// paged marks a connection's list: the field that pages it (incidents,
	// auditEvents, components) already multiplied its cost by the page size,
	// so the list itself costs 1 + its items.
	paged bool
	// embedded marks a short list that comes with its parent's row (labels,
	// tags, scopes, phases, an audit event's changes): reading it costs
	// nothing more than the row, so it costs 1 + one item, like an object.
	embedded bool
}

// pricedPage is the most items a list without a size argument is priced
// at: as a page, so that one status summary (up to 1,000 components) stays
// an ordinary query, while every alias of it still costs a page, so 600
// aliases are refused (its answer is still bounded by the list's max).
const pricedPage = model.MaxLimit

// readCosts price fields that read a whole status summary (every
// component, open incident and window) whatever is selected of it, so
// that aliases of them cannot multiply that read past the limit.
var readCosts = map[string]int{
	"Query.status":       model.MaxSummaryComponents,
	"Query.publicStatus": model.MaxSummaryComponents,
}

// maxAuditChanges bounds an audit event's changes: no mutation records more
// fields than an incident has (about a dozen), the widest change.
const maxAuditChanges = 16

// listBounds holds every list-typed output field of the schema, and the
// fields that page a connection (TestEveryListIsBounded fails for a list
// field missing here). Keys are Type.field.
var listBounds = map[string]listBound{
	// Connections: priced by the paging field, at the page size asked for.
	"Query.incidents":              {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"first", "last", "limit"}},
	"IncidentConnection.edges":     {max: model.MaxLimit, paged: true},
	"IncidentConnection.nodes":     {max: model.MaxLimit, paged: true},
	"Query.auditEvents":            {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"first"}},
	"AuditEventConnection.nodes":   {max: model.MaxLimit, paged: true},
	"Query.components":             {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"limit"}},
	"ComponentPage.nodes":          {max: model.MaxLimit, paged: true},
	"Incident.affects":             {max: model.MaxAffects, def: model.DefaultLimit, args: []string{"first"}},
	"Incident.updates":             {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"last"}},
	"Component.activelyAffectedBy": {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"first"}},
	"Maintenance.components":       {max: model.MaxMaintenanceComponents, def: model.DefaultLimit, args: []string{"first"}},
	"Query.maintenance":            {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"first"}},
	// Lists without a size argument answer up to their model limit.
	"Query.apiKeys":                    {max: model.MaxAPIKeysListed},
	"StatusSummary.components":         {max: model.MaxSummaryComponents},
	"StatusSummary.openIncidents":      {max: model.MaxLimit},
	"StatusSummary.maintenance":        {max: model.MaxLimit},
	"Query.uptime":                     {max: model.MaxUptimeComponents, args: []string{"components"}},
	"Query.publicUptime":               {max: model.MaxUptimeComponents, args: []string{"components"}},
	"ComponentUptime.windows":          {max: len(model.UptimeWindows), embedded: true},
	"ComponentUptime.days":             {max: model.UptimeDays},
	"Query.webhooks":                   {max: model.MaxWebhookEndpoints},
	"Query.webhookDeliveries":          {max: model.MaxLimit, def: model.DefaultLimit, args: []string{"first"}},
	"WebhookDeliveryPage.nodes":        {max: model.MaxLimit, paged: true},
	"WebhookDelivery.attemptLog":       {max: model.MaxWebhookRetries + 1, embedded: true},
	"Webhook.events":                   {max: 8, embedded: true},
	"WebhookFilter.severities":         {max: model.MaxWebhookFilterItems},
	"WebhookFilter.statuses":           {max: model.MaxWebhookFilterItems},
	"WebhookFilter.services":           {max: model.MaxWebhookFilterItems},
	"WebhookFilter.components":         {max: model.MaxWebhookFilterItems},
	"WebhookFilter.labels":             {max: model.MaxWebhookFilterItems},
	"PublicStatus.components":          {max: model.MaxSummaryComponents},
	"PublicStatus.openIncidents":       {max: model.MaxLimit},
	"PublicStatus.maintenance":         {max: model.MaxLimit},
	"PublicComponent.labels":           {max: model.MaxLabels, embedded: true},
	"PublicIncident.updates":           {max: model.MaxHistoryUpdates, embedded: true},
	"PublicMaintenance.components":     {max: model.MaxMaintenanceComponents},
	"StatusPublication.allowedOrigins": {max: model.MaxAllowedOrigins},
	"Query.impactTypes":                {max: len(model.BuiltInImpactTypes()) + model.MaxCustomImpactTypes},
	"Query.severities":                 {max: len(model.Severities) + model.MaxCustomSeverities},
	"AuditEvent.changes":               {max: maxAuditChanges, embedded: true},
	"Component.labels":                 {max: model.MaxLabels, embedded: true},
	"Incident.tags":                    {max: model.MaxTags, embedded: true},
	"ApiKey.scopes":                    {max: len(model.KnownScopes), embedded: true},
	"PhaseList.phases":                 {max: model.MaxPhases, embedded: true},
}

// bound returns the rule of a field of listBounds; a missing one is a bug
// that TestEveryListIsBounded reports.
func bound(field string) listBound {
	b, ok := listBounds[field]
	if !ok {
		panic("graph: no list bound for " + field)
	}
	return b
}

// capped cuts a list without a size argument to its field's bound.
func capped[T any](items []T, field string) []T {
	return items[:min(len(items), bound(field).max)]
}

// size is how many items the field answers for the argument n (nil: not
// given), or a ValidationError naming arg and the accepted range.
func (b listBound) size(arg string, n *int) (int, error) {
	if n == nil {
		return b.def, nil
	}
	if *n < 1 || *n > b.max {
		return 0, model.Invalid("Invalid arguments", model.FieldError{Field: arg,
			Message: fmt.Sprintf("%s must be between 1 and %d", arg, b.max)})
	}
	return *n, nil
}

// requested is the size a field is priced at: the size asked for (within
// 1..max: an argument out of range is refused by the resolver, with its own
// message), else the default, else the bound up to a page (pricedPage).
func (b listBound) requested(args map[string]any) int {
	n := b.def
	if n == 0 {
		n = min(b.max, pricedPage)
	}
	for _, a := range b.args {
		if v, ok := intArg(args[a]); ok && v > 0 {
			n = min(v, b.max)
		}
		if l, ok := args[a].([]any); ok && len(l) > 0 {
			n = min(len(l), b.max) // one item per id asked for
		}
	}
	return n
}

// cost is the field's complexity: 1, plus each item it can answer times
// what an item's selection costs (0 for a list of scalars, which come with
// their parent's row like any other scalar).
func (b listBound) cost(child int, args map[string]any) int {
	if b.paged || b.embedded {
		return satAdd(1, child)
	}
	return satAdd(1, satMul(b.requested(args), child))
}

// intArg reads an Int argument as the complexity walk sees it: a literal
// (int64), a JSON variable (json.Number or float64), or a Go int.
func intArg(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(max(min(n, math.MaxInt32), math.MinInt32)), true
	case json.Number:
		i, err := n.Int64()
		return int(max(min(i, math.MaxInt32), math.MinInt32)), err == nil
	case float64:
		return int(max(min(n, math.MaxInt32), math.MinInt32)), true
	}
	return 0, false
}

func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func satMul(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// costedSchema prices every field of listBounds from the table, so that a
// list costs what it can answer and an operation that could render more than
// the complexity limit is refused before it runs; other fields keep gqlgen's
// price (1 plus their selection).
type costedSchema struct{ graphql.ExecutableSchema }

func (s costedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if b, ok := listBounds[typeName+"."+field]; ok {
		return b.cost(child, args), true
	}
	if c, ok := readCosts[typeName+"."+field]; ok {
		return satAdd(c, child), true
	}
	return s.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}
