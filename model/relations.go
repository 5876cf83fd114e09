package model

import "context"

// RelationService loads the relations between incidents and components in
// batches, for dataloaders: one query per relation whatever the number of
// items. Every method is scoped to the caller's tenant.
type RelationService interface {
	// AffectsOf returns the components each incident affects (incidents:read).
	AffectsOf(ctx context.Context, incidentIDs []string) (map[string][]Affect, error)
	// ComponentsByID returns components (components:read); unknown ids are absent.
	ComponentsByID(ctx context.Context, ids []string) (map[string]*Component, error)
	// AffectingOf returns the open incidents affecting each component (components:read).
	AffectingOf(ctx context.Context, componentIDs []string) (map[string][]AffectingIncident, error)
	// IncidentsByID returns live incidents (incidents:read); unknown ids are absent.
	IncidentsByID(ctx context.Context, ids []string) (map[string]*Incident, error)
	// UpdatesOf returns the latest entries (at most latest) of each
	// incident's timeline, oldest first (incidents:read).
	UpdatesOf(ctx context.Context, incidentIDs []string, latest int) (map[string][]IncidentUpdate, error)
}
