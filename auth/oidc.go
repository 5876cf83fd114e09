package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/incidentd/incidentd/model"
)

// OIDCConfig configures bearer JWTs from an OpenID Connect issuer.
type OIDCConfig struct {
	Issuer   string // OIDC_ISSUER; must match the token's iss exactly
	Audience string // OIDC_AUDIENCE; must be in the token's aud
	// TenantClaim names the claim that carries the tenant (default tenant_id, as in the platform conventions).
	TenantClaim string
	// DefaultTier applies to tokens without a tier claim (default: the default tier).
	DefaultTier string
}

// asymmetricAlgs are the only signatures accepted: a shared-secret (HS*) or
// unsigned token must never pass as an identity.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// OIDC verifies issuer-signed JWTs and maps their claims to a principal.
type OIDC struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// NewOIDC discovers the issuer (its discovery document and JWKS URL); keys
// are fetched from the JWKS as tokens need them, so key rotation is followed.
func NewOIDC(ctx context.Context, cfg OIDCConfig, clock model.Clock) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, fmt.Errorf("oidc: issuer and audience are both required")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant_id"
	}
	if cfg.DefaultTier == "" {
		cfg.DefaultTier = DefaultTier
	}
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery of %s: %w", cfg.Issuer, err)
	}
	v := provider.Verifier(&oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: asymmetricAlgs,
		Now:                  clock.Now,
	})
	return &OIDC{cfg: cfg, verifier: v}, nil
}

var errBadToken = model.Unauthorized("Invalid or expired bearer token")

// looksLikeJWT tells a JWT (three dot-separated parts) from an API key.
func looksLikeJWT(cred string) bool { return strings.Count(cred, ".") == 2 }

// Authenticate verifies a token (signature, iss, aud, exp, nbf) and maps
// its claims: sub (or user_id) is the actor; the tenant claim is required;
// roles, permissions and the OAuth2 scope claim give the scopes; tier
// picks the rate-limit tier.
func (o *OIDC) Authenticate(ctx context.Context, raw string) (*model.Principal, error) {
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, errBadToken
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, errBadToken
	}
	tenant, _ := claims[o.cfg.TenantClaim].(string)
	actor := tok.Subject
	if actor == "" {
		actor, _ = claims["user_id"].(string)
	}
	if tenant == "" || actor == "" {
		return nil, model.Unauthorized("bearer token lacks the " + o.cfg.TenantClaim + " or sub claim")
	}
	var scopes []model.Scope
	add := func(s string) {
		if sc := model.Scope(strings.TrimSpace(s)); model.ValidScope(sc) && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	for _, name := range []string{"roles", "permissions"} {
		if list, ok := claims[name].([]any); ok {
			for _, v := range list {
				if s, ok := v.(string); ok {
					add(s)
				}
			}
		}
	}
	if s, ok := claims["scope"].(string); ok {
		for f := range strings.FieldsSeq(s) {
			add(f)
		}
	}
	tier, _ := claims["tier"].(string)
	if tier == "" {
		tier = o.cfg.DefaultTier
	}
	return &model.Principal{
		TenantID:     tenant,
		ActorID:      actor,
		Scopes:       scopes,
		Tier:         tier,
		CredentialID: "oidc:" + tok.Issuer + "|" + tenant + "|" + actor,
	}, nil
}
