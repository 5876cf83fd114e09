package model

import (
	"context"
	"slices"
	"strings"
)

// Scope is a permission held by a principal.
type Scope string

const (
	ScopeIncidentsRead   Scope = "incidents:read"
	ScopeIncidentsWrite  Scope = "incidents:write"
	ScopeComponentsRead  Scope = "components:read"
	ScopeComponentsWrite Scope = "components:write"
	ScopeAPIKeysAdmin    Scope = "apikeys:admin"
	ScopeAuditRead       Scope = "audit:read"
	ScopeWebhooksAdmin   Scope = "webhooks:admin"
	// ScopeRead and ScopeWrite are the incidents contract's OAuth2 scopes; they stand for
	// read or write access to the domain's resources (incidents, components),
	// not for administration (API keys, the audit trail).
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// KnownScopes lists every scope a credential may carry.
var KnownScopes = []Scope{ScopeIncidentsRead, ScopeIncidentsWrite, ScopeComponentsRead, ScopeComponentsWrite,
	ScopeAPIKeysAdmin, ScopeAuditRead, ScopeWebhooksAdmin, ScopeRead, ScopeWrite}

// ValidScope reports whether s is a scope the platform knows.
func ValidScope(s Scope) bool { return slices.Contains(KnownScopes, s) }

// Principal is the authenticated caller: who acts, in which tenant, with what.
type Principal struct {
	TenantID string
	ActorID  string
	Scopes   []Scope
	// Tier names the rate-limit tier.
	Tier string
	// CredentialID identifies the credential (an API key id, a token's
	// issuer and subject); the audit trail records it.
	CredentialID string
	// KeyPrefix is the public prefix of an API key credential ("" for tokens),
	// so that a revocation can end the streams it opened.
	KeyPrefix string
}

// Budget is the rate-limit bucket of p: its tenant and actor, so that
// minting more keys for the same actor does not multiply its budget.
func (p *Principal) Budget() string { return "p:" + p.TenantID + "|" + p.ActorID }

// Has reports whether p holds scope s. A write scope implies the matching
// read scope, and the seed's read/write aliases cover every resource.
func (p *Principal) Has(s Scope) bool {
	for _, held := range p.Scopes {
		if held == s || implies(held, s) {
			return true
		}
	}
	return false
}

func implies(held, want Scope) bool {
	admin := want == ScopeAPIKeysAdmin || want == ScopeAuditRead || want == ScopeWebhooksAdmin
	switch held {
	case ScopeWrite:
		return !admin
	case ScopeRead:
		return !admin && isRead(want)
	}
	if resource, ok := strings.CutSuffix(string(held), ":write"); ok {
		return want == Scope(resource+":read")
	}
	return false
}

func isRead(s Scope) bool { return strings.HasSuffix(string(s), ":read") }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Authorize returns the principal in ctx if it holds scope s. Every service
// method calls it first, so that no transport can forget the check.
func Authorize(ctx context.Context, s Scope) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil || p.TenantID == "" {
		return nil, Unauthorized("Invalid or missing API key")
	}
	if !p.Has(s) {
		return nil, Forbidden("this credential lacks the scope " + string(s))
	}
	return p, nil
}
