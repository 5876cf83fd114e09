package model

import "context"

// ImpactType is one of the built-in impact types: the levels monitoring
// reports (seed 001) and incidents' affects carry, each lined up with one of
// seed 000's severities.
type ImpactType struct {
	Impact      Impact
	DisplayName string
	Description string
}

// SeverityLevel is one of seed 000's severities with seed 003's numeric value
// (0..100, higher is worse).
type SeverityLevel struct {
	Severity    Severity
	DisplayName string
	Value       int
}

var impactTypes = []ImpactType{
	{ImpactMaintenance, "Maintenance", "Planned work; the component may be degraded or unavailable."},
	{ImpactMinor, "Minor", "Degraded performance or a partial loss of function for some users."},
	{ImpactMajor, "Major", "A significant loss of function for many users."},
	{ImpactOutage, "Outage", "The component is unavailable."},
}

var severityLevels = []SeverityLevel{
	{SeverityLow, "Low", 25},
	{SeverityMedium, "Medium", 50},
	{SeverityHigh, "High", 75},
	{SeverityCritical, "Critical", 100},
}

// ImpactTypes lists the built-in impact types, mildest first. Any credential
// that can read incidents or components may read them.
func ImpactTypes(ctx context.Context) ([]ImpactType, error) {
	if err := authorizeCatalogue(ctx); err != nil {
		return nil, err
	}
	return append([]ImpactType(nil), impactTypes...), nil
}

// SeverityLevels lists seed 000's severities with their values, mildest first.
func SeverityLevels(ctx context.Context) ([]SeverityLevel, error) {
	if err := authorizeCatalogue(ctx); err != nil {
		return nil, err
	}
	return append([]SeverityLevel(nil), severityLevels...), nil
}

func authorizeCatalogue(ctx context.Context) error {
	if _, err := Authorize(ctx, ScopeIncidentsRead); err == nil || AsError(err).Code != CodeForbidden {
		return err
	}
	if _, err := Authorize(ctx, ScopeComponentsRead); err == nil {
		return nil
	}
	return Forbidden("this credential lacks the scope incidents:read or components:read")
}
