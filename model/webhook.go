package model

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Outgoing webhooks (Standard Webhooks): a tenant registers endpoints that
// receive the changes of its resources as signed HTTP POSTs. Deliveries are
// fanned out from the committed event stream, so that none is lost across a
// crash, and retried on a schedule until the receiver accepts them or they
// are abandoned.

// WebhookEventType names what a webhook message reports.
type WebhookEventType string

const (
	WebhookIncidentCreated     WebhookEventType = "incident.created"
	WebhookIncidentUpdated     WebhookEventType = "incident.updated"
	WebhookIncidentDeleted     WebhookEventType = "incident.deleted"
	WebhookIncidentUpdateAdded WebhookEventType = "incident.update_added"
	// WebhookComponentStatus is derived from incident events: one message
	// per component whose status an incident change moved (among those
	// whose affect it touched and those the incident affects), carrying
	// its status at the event's time as the uptime history records it,
	// sent when it differs from the last status reported.
	WebhookComponentStatus WebhookEventType = "component.status"
	// The maintenance types may be subscribed to but are never sent yet:
	// maintenance changes are not in the event stream.
	WebhookMaintenanceCreated WebhookEventType = "maintenance.created"
	WebhookMaintenanceStarted WebhookEventType = "maintenance.started"
	WebhookMaintenanceEnded   WebhookEventType = "maintenance.ended"
	// WebhookTest is what SendTest queues; endpoints need not subscribe to it.
	WebhookTest WebhookEventType = "webhook.test"
)

// WebhookEventTypes lists the types an endpoint may subscribe to.
var WebhookEventTypes = []WebhookEventType{WebhookIncidentCreated, WebhookIncidentUpdated, WebhookIncidentDeleted,
	WebhookIncidentUpdateAdded, WebhookComponentStatus, WebhookMaintenanceCreated, WebhookMaintenanceStarted, WebhookMaintenanceEnded}

// ScopeWebhooksAdmin (principal.go) guards every webhook method.

// Audit actions of webhook endpoints.
const (
	AuditWebhookCreate    = "webhook.create"
	AuditWebhookUpdate    = "webhook.update"
	AuditWebhookDelete    = "webhook.delete"
	AuditWebhookRotate    = "webhook.rotate"
	AuditWebhookTest      = "webhook.test"
	AuditWebhookRedeliver = "webhook.redeliver"
)

// Limits of webhook endpoints.
const (
	MaxWebhookURLLen         = 2000
	MaxWebhookDescriptionLen = 500
	MaxWebhookFilterItems    = 100
	// MaxWebhookEndpoints bounds a tenant's endpoints.
	MaxWebhookEndpoints = 50
	// WebhookSecretGrace is how long a rotated-out secret still signs.
	WebhookSecretGrace = 24 * time.Hour
	// MaxWebhookExcerpt bounds the stored start of a receiver's answer.
	MaxWebhookExcerpt = 1024
	// MaxWebhookRetries bounds a retry schedule, and so a delivery's
	// attempt log (one more attempt than retries).
	MaxWebhookRetries = 20
)

// WebhookFilter narrows what an endpoint receives; empty members do not
// filter, members mean any of. Severities, statuses and services apply to
// the incident of the change (before or after it, as EventFilter does),
// also for component.status messages; Components and Labels to the
// message's components: for an incident message, those the incident
// affects or whose affect the change touched; for a component.status
// message, its component. A component passes if it is one of Components
// (when given) and carries every label of Labels (when given).
type WebhookFilter struct {
	EventFilter
	Components []string
	Labels     map[string]string
}

// Validate lists every violation.
func (f *WebhookFilter) Validate() []FieldError {
	errs := f.EventFilter.Validate()
	for i := range errs {
		errs[i].Field = "filter." + errs[i].Field
	}
	if n := len(f.Severities) + len(f.Statuses) + len(f.Services) + len(f.Components) + len(f.Labels); n > MaxWebhookFilterItems {
		errs = append(errs, FieldError{"filter", fmt.Sprintf("a filter holds at most %d values", MaxWebhookFilterItems)})
	}
	for _, c := range f.Components {
		errs = append(errs, checkText("filter.components", c, 100, true)...)
	}
	labels := ComponentInput{Labels: Some(f.Labels)}
	for _, e := range labels.Validate(false) {
		errs = append(errs, FieldError{"filter." + e.Field, e.Message})
	}
	return slices.CompactFunc(errs, func(a, b FieldError) bool { return a == b })
}

// Match reports whether m passes f.
func (f *WebhookFilter) Match(m *WebhookMessage) bool {
	if m.Event != nil && !f.EventFilter.Match(m.Event) {
		return false
	}
	if len(f.Components) == 0 && len(f.Labels) == 0 {
		return true
	}
	return slices.ContainsFunc(m.Components, f.matchComponent)
}

func (f *WebhookFilter) matchComponent(c *Component) bool {
	if c == nil || (len(f.Components) > 0 && !slices.Contains(f.Components, c.ID)) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// NeedsComponents reports whether matching needs the message's components.
func (f *WebhookFilter) NeedsComponents() bool { return len(f.Components) > 0 || len(f.Labels) > 0 }

// WebhookEndpoint is a receiver of a tenant's webhook messages. Its secret
// is never part of it: it is shown once, when created or rotated.
type WebhookEndpoint struct {
	ID          string
	TenantID    string
	URL         string
	Description string
	Events      []WebhookEventType
	Filter      WebhookFilter
	Enabled     bool
	// DisabledReason says why the platform disabled the endpoint ("" when
	// enabled, or disabled by a caller).
	DisabledReason string
	// FailingSince is when the endpoint's deliveries began failing without
	// a success since (nil when the last attempt succeeded).
	FailingSince *time.Time
	// PreviousSecretUntil is when the rotated-out secret stops signing (nil
	// when there is none).
	PreviousSecretUntil *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
	CreatedBy           string
	UpdatedBy           string
}

// Wants reports whether the endpoint receives m.
func (ep *WebhookEndpoint) Wants(m *WebhookMessage) bool {
	return ep.Enabled && slices.Contains(ep.Events, m.Type) && ep.Filter.Match(m)
}

// WebhookMessage is one message of the stream before it is matched to
// endpoints.
type WebhookMessage struct {
	Type WebhookEventType
	// At is when the change happened: the event's time, or the moment a
	// maintenance window was created, started, ended or cancelled.
	At time.Time
	// Event is the incident event (nil for maintenance messages).
	Event *Event
	// Maintenance is the window (maintenance.* only); Cancelled: its
	// maintenance.ended comes from its deletion.
	Maintenance *Maintenance
	Cancelled   bool
	// Components: see WebhookFilter (only read when a filter needs them,
	// and for component.status: the one component).
	Components []*Component
	// Status is the component's status (component.status only):
	// "operational" or the worst impact of the open incidents affecting it.
	Status string
}

// ComponentStatusChange is a component's status after an event moved it.
type ComponentStatusChange struct {
	Component *Component
	// Status is "operational" or the worst impact of the open incidents
	// affecting the component (maintenance, minor, major, outage).
	Status string
}

// WebhookMessagesOf lists the messages an event makes: one of the incident
// event's own type, then one component.status per component it moved.
// incidentComponents are those the incident affects or whose affect the
// change touched (see WebhookFilter); the store reads both.
func WebhookMessagesOf(e *Event, incidentComponents []*Component, moved []ComponentStatusChange) []*WebhookMessage {
	var typ WebhookEventType
	switch e.Type {
	case EventIncidentCreated:
		typ = WebhookIncidentCreated
	case EventIncidentUpdated:
		typ = WebhookIncidentUpdated
	case EventIncidentDeleted:
		typ = WebhookIncidentDeleted
	case EventIncidentUpdateAdded:
		typ = WebhookIncidentUpdateAdded
	default:
		return nil
	}
	out := []*WebhookMessage{{Type: typ, At: e.At, Event: e, Components: incidentComponents}}
	for _, c := range moved {
		out = append(out, &WebhookMessage{Type: WebhookComponentStatus, At: e.At, Event: e, Components: []*Component{c.Component}, Status: c.Status})
	}
	return out
}

// WebhookEndpointInput creates an endpoint, or patches one (Set fields).
type WebhookEndpointInput struct {
	URL         Optional[string]
	Description Optional[string]
	Events      Optional[[]WebhookEventType]
	Filter      Optional[WebhookFilter]
	Enabled     Optional[bool]
}

// Validate lists every violation; create requires url and events.
// allowPrivate admits plain http and private, loopback and link-local
// addresses (development and tests).
func (in *WebhookEndpointInput) Validate(create, allowPrivate bool) []FieldError {
	var errs []FieldError
	switch {
	case in.URL.Set && in.URL.Null:
		errs = append(errs, FieldError{"url", "url cannot be null"})
	case in.URL.Set:
		errs = append(errs, CheckWebhookURL(in.URL.Value, allowPrivate)...)
	case create:
		errs = append(errs, FieldError{"url", "url is required"})
	}
	if in.Description.Set && !in.Description.Null {
		errs = append(errs, checkText("description", in.Description.Value, MaxWebhookDescriptionLen, false)...)
	}
	switch {
	case in.Events.Set && (in.Events.Null || len(in.Events.Value) == 0):
		errs = append(errs, FieldError{"events", "events must list at least one event type"})
	case in.Events.Set:
		for _, t := range in.Events.Value {
			if !slices.Contains(WebhookEventTypes, t) {
				errs = append(errs, FieldError{"events", "events must be among: " + joinTypes(WebhookEventTypes)})
				break
			}
		}
	case create:
		errs = append(errs, FieldError{"events", "events is required"})
	}
	if in.Filter.Set && !in.Filter.Null {
		errs = append(errs, in.Filter.Value.Validate()...)
	}
	if in.Enabled.Set && in.Enabled.Null {
		errs = append(errs, FieldError{"enabled", "enabled cannot be null"})
	}
	return errs
}

func joinTypes(ts []WebhookEventType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// CheckWebhookURL is the rule for an endpoint's URL: absolute https (http
// too when allowPrivate), a host, no credentials or fragment, and, when the
// host is an address or a local name, a public one (see PublicAddr). Names
// are checked again once resolved, when each delivery dials.
func CheckWebhookURL(raw string, allowPrivate bool) []FieldError {
	bad := func(msg string) []FieldError { return []FieldError{{"url", msg}} }
	if errs := checkText("url", raw, MaxWebhookURLLen, true); len(errs) > 0 {
		return errs
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return bad("url must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return bad("url must use https")
	}
	if u.User != nil {
		return bad("url must not hold credentials")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("url must not have a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return bad("url must have a host")
	}
	if allowPrivate {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if !PublicAddr(addr) {
			return bad("url must not point to a loopback, private, link-local, unspecified or multicast address")
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") || !strings.Contains(name, ".") {
		return bad("url must name a public host")
	}
	return nil
}

// nonPublic are ranges beyond the netip predicates that no webhook may
// reach: "this network", shared address space (carrier NAT), IPv4
// benchmarking, the limited broadcast, and NAT64's well-known prefix
// (whose embedded IPv4 address could be private).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// PublicAddr reports whether a webhook may be sent to a: not loopback,
// private, link-local, unspecified, multicast or another reserved range
// (IPv4-mapped IPv6 addresses are judged as the IPv4 address they hold).
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// NewWebhookSecret returns a new signing secret: "whsec_" and the base64 of
// 32 random bytes, as Standard Webhooks libraries read it.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// WebhookDeliveryState is where a delivery stands.
type WebhookDeliveryState string

const (
	// WebhookPending: not accepted yet; NextAttemptAt says when it is tried.
	WebhookPending WebhookDeliveryState = "pending"
	// WebhookDelivered: the receiver answered 2xx.
	WebhookDelivered WebhookDeliveryState = "delivered"
	// WebhookFailed: abandoned (retries exhausted, 410 Gone, or the
	// endpoint was disabled for failing).
	WebhookFailed WebhookDeliveryState = "failed"
)

// WebhookDelivery is one message queued for one endpoint, with the outcome
// of its latest attempt.
type WebhookDelivery struct {
	ID         string
	EndpointID string
	// MessageID is the webhook-id header: the same on every retry and
	// redelivery of the message, so that receivers can drop duplicates.
	MessageID string
	Type      WebhookEventType
	// ResourceID is the incident (or component, for component.status) the
	// message is about.
	ResourceID string
	// EventID is the event's cursor ("" for a test or a maintenance message).
	EventID  string
	State    WebhookDeliveryState
	Attempts int
	// LastStatus is the receiver's HTTP status of the latest attempt (0:
	// none, or no answer: see LastError).
	LastStatus    int
	LastError     string
	LastLatency   time.Duration
	LastAttemptAt *time.Time
	// ResponseExcerpt is the start of the latest answer's body (at most
	// MaxWebhookExcerpt bytes, valid UTF-8).
	ResponseExcerpt string
	NextAttemptAt   *time.Time
	CreatedAt       time.Time
	// Payload is the body sent (the same bytes on every attempt).
	Payload []byte
	// AttemptLog is every attempt, oldest first (read by Delivery only).
	AttemptLog []WebhookDeliveryAttempt
}

// Milliseconds is how both doors show a latency: milliseconds with the
// microseconds kept.
func Milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WebhookDeliveryAttempt is one attempt of a delivery.
type WebhookDeliveryAttempt struct {
	// Number counts from 1.
	Number int
	At     time.Time
	// Status is the receiver's HTTP status (0: no answer, see Error).
	Status  int
	Error   string
	Latency time.Duration
	// ResponseExcerpt is the start of the answer's body (at most
	// MaxWebhookExcerpt bytes, valid UTF-8).
	ResponseExcerpt string
}

// WebhookDeliveryQuery pages through an endpoint's deliveries, newest first.
type WebhookDeliveryQuery struct {
	Limit  int    // 1..MaxLimit
	Cursor string // a NextCursor of a previous page
}

// WebhookDeliveryPage is one page of deliveries, newest first.
type WebhookDeliveryPage struct {
	Items      []*WebhookDelivery
	HasMore    bool
	NextCursor string
}

// WebhookService manages the caller's tenant's webhook endpoints. Every
// method requires the webhooks:admin scope (codes unauthorized, forbidden)
// and sees the caller's tenant only (another tenant's id is not_found).
type WebhookService interface {
	// Create registers an endpoint and returns it with its secret, which
	// is never shown again. Enabled defaults to true. Codes: invalid,
	// business_rule (the tenant has MaxWebhookEndpoints already).
	Create(ctx context.Context, in WebhookEndpointInput) (*WebhookEndpoint, string, error)
	// List returns the tenant's endpoints, oldest first (at most MaxWebhookEndpoints).
	List(ctx context.Context) ([]*WebhookEndpoint, error)
	// Get returns one endpoint. Codes: not_found.
	Get(ctx context.Context, id string) (*WebhookEndpoint, error)
	// Update changes the Set fields. Enabling an endpoint clears its
	// disabled reason and failure streak. Codes: not_found, invalid.
	Update(ctx context.Context, id string, in WebhookEndpointInput) (*WebhookEndpoint, error)
	// Delete removes an endpoint and its delivery log; pending deliveries
	// are dropped. Codes: not_found.
	Delete(ctx context.Context, id string) error
	// RotateSecret replaces the secret and returns the new one; the old one
	// keeps signing too (a second signature) for WebhookSecretGrace.
	// Codes: not_found.
	RotateSecret(ctx context.Context, id string) (*WebhookEndpoint, string, error)
	// SendTest queues a webhook.test message to the endpoint, enabled or
	// not. Codes: not_found.
	SendTest(ctx context.Context, id string) (*WebhookDelivery, error)
	// Delivery returns one delivery of the endpoint with its attempt log.
	// Codes: unauthorized, forbidden, not_found.
	Delivery(ctx context.Context, endpointID, deliveryID string) (*WebhookDelivery, error)
	// Deliveries pages through the endpoint's delivery log, newest first.
	// Codes: not_found, invalid (limit, cursor).
	Deliveries(ctx context.Context, endpointID string, q WebhookDeliveryQuery) (*WebhookDeliveryPage, error)
	// Redeliver queues the delivery's message again (same webhook-id and
	// body) as a new delivery, whatever its state. endpointID, when not
	// empty, is the endpoint the delivery must be of. Codes: not_found.
	Redeliver(ctx context.Context, endpointID, deliveryID string) (*WebhookDelivery, error)
	// RedeliverSince queues again every failed delivery of the endpoint
	// created at or after since, in their order, and says how many.
	// Codes: not_found, invalid (since in the future or out of range).
	RedeliverSince(ctx context.Context, endpointID string, since time.Time) (int, error)
}

// WebhookChanges lists what differs between two versions of an endpoint, for
// the audit trail (never the secret).
func WebhookChanges(before, after *WebhookEndpoint) map[string]Change {
	out := map[string]Change{}
	if before == nil {
		before = &WebhookEndpoint{}
		out["url"] = Change{After: after.URL}
		out["events"] = Change{After: after.Events}
		out["enabled"] = Change{After: after.Enabled}
		out["description"] = Change{After: after.Description}
		out["filter"] = Change{After: after.Filter}
		return out
	}
	if before.URL != after.URL {
		out["url"] = Change{Before: before.URL, After: after.URL}
	}
	if !slices.Equal(before.Events, after.Events) {
		out["events"] = Change{Before: before.Events, After: after.Events}
	}
	if before.Enabled != after.Enabled {
		out["enabled"] = Change{Before: before.Enabled, After: after.Enabled}
	}
	if before.Description != after.Description {
		out["description"] = Change{Before: before.Description, After: after.Description}
	}
	if fmt.Sprint(before.Filter) != fmt.Sprint(after.Filter) {
		out["filter"] = Change{Before: before.Filter, After: after.Filter}
	}
	return out
}
