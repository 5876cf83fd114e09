package model

import (
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"time"
)

// API keys look like ik_<12 lowercase alphanumerics>_<32 alphanumerics>. The
// first part is the public prefix, shown in listings and used to look the key
// up; the whole key is stored only as a SHA-256 hash (keys carry 190 bits of
// randomness, so a slow hash would add latency without adding safety).
const (
	apiKeyPrefixLen = 12
	apiKeySecretLen = 32
	apiKeySecretSet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

var apiKeyPattern = regexp.MustCompile(`^ik_[a-z0-9]{12}_[A-Za-z0-9]{32}$`)

// APIKey is a stored credential. Hash is never shown.
type APIKey struct {
	ID         string
	TenantID   string
	Name       string
	Prefix     string
	Hash       []byte
	Scopes     []Scope
	Tier       string
	ActorID    string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// NewAPIKeySecret returns a fresh key, its public prefix and its hash.
func NewAPIKeySecret() (key, prefix string, hash []byte) {
	prefix = "ik_" + RandomString(apiKeyPrefixLen, idAlphabet)
	key = prefix + "_" + RandomString(apiKeySecretLen, apiKeySecretSet)
	return key, prefix, HashAPIKey(key)
}

// ParseAPIKey returns the prefix of a well-formed key.
func ParseAPIKey(key string) (prefix string, ok bool) {
	if !apiKeyPattern.MatchString(key) {
		return "", false
	}
	return key[:3+apiKeyPrefixLen], true
}

// HashAPIKey returns the stored form of key.
func HashAPIKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// APIKeyIssue is the input of IssueAPIKey.
type APIKeyIssue struct {
	TenantID  string
	Name      string
	Scopes    []Scope
	Tier      string
	ActorID   string // defaults to the key's id
	ExpiresAt *time.Time
}

// Validate lists every violation.
func (in *APIKeyIssue) Validate() []FieldError {
	var errs []FieldError
	if !tenantPattern.MatchString(in.TenantID) {
		errs = append(errs, FieldError{"tenant", "tenant must be 1 to 64 characters of a-z, A-Z, 0-9, '.', '_' or '-'"})
	}
	errs = append(errs, checkText("name", in.Name, 100, true)...)
	if len(in.Scopes) == 0 {
		errs = append(errs, FieldError{"scopes", "scopes must name at least one scope"})
	}
	for _, s := range in.Scopes {
		if !ValidScope(s) {
			errs = append(errs, FieldError{"scopes", "unknown scope " + string(s)})
		}
	}
	if in.ActorID != "" {
		errs = append(errs, checkText("actor", in.ActorID, 100, true)...)
	}
	if in.ExpiresAt != nil {
		errs = append(errs, checkTime("expiresAt", *in.ExpiresAt)...)
	}
	return errs
}

var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// APIKeyStore keeps API keys.
type APIKeyStore interface {
	// IssueAPIKey creates a key outside of any principal: it serves the command
	// line, which bootstraps the first keys. It returns the stored key and the
	// secret, which is never available again. Codes: invalid.
	IssueAPIKey(ctx context.Context, in APIKeyIssue) (*APIKey, string, error)
	// APIKeyByPrefix returns the key with that prefix. Codes: not_found.
	APIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, error)
	// TouchAPIKey records a use of the key (throttled by the caller).
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// APIKeyCreate is the input of APIKeyService.Create.
type APIKeyCreate struct {
	Name      string
	Scopes    []Scope
	Tier      string
	ExpiresAt *time.Time
}

// DefaultRotationOverlap is how long a rotated key keeps working beside its successor.
const DefaultRotationOverlap = 24 * time.Hour

// MaxAPIKeysListed bounds APIKeyService.List.
const MaxAPIKeysListed = 1000

// APIKeyService manages the API keys of the caller's tenant. Every method
// needs the apikeys:admin scope.
type APIKeyService interface {
	// Create issues a key; the secret is returned once. A key may only carry
	// scopes its creator holds. Codes: unauthorized, forbidden, invalid.
	Create(ctx context.Context, in APIKeyCreate) (*APIKey, string, error)
	// List returns the tenant's keys, newest first, revoked ones included.
	// Codes: unauthorized, forbidden.
	List(ctx context.Context) ([]*APIKey, error)
	// Get returns one key. Codes: unauthorized, forbidden, not_found.
	Get(ctx context.Context, id string) (*APIKey, error)
	// Revoke ends a key at once, on every instance; revoking twice is a no-op.
	// Codes: unauthorized, forbidden, not_found.
	Revoke(ctx context.Context, id string) (*APIKey, error)
	// Rotate issues a successor with the same name, scopes and tier; the old
	// key keeps working for overlap, then expires. Codes: unauthorized,
	// forbidden, not_found, invalid, business_rule (revoked or expired key).
	Rotate(ctx context.Context, id string, overlap time.Duration) (*APIKey, string, error)
}

// Validate lists every violation; creator is the principal issuing the key.
func (in *APIKeyCreate) Validate(creator *Principal, now time.Time) []FieldError {
	var errs []FieldError
	errs = append(errs, checkText("name", in.Name, 100, true)...)
	if len(in.Scopes) == 0 {
		errs = append(errs, FieldError{"scopes", "scopes must name at least one scope"})
	}
	for i, s := range in.Scopes {
		field := fmt.Sprintf("scopes[%d]", i)
		switch {
		case !ValidScope(s):
			errs = append(errs, FieldError{field, "unknown scope " + string(s)})
		case creator != nil && !creator.Has(s):
			errs = append(errs, FieldError{field, "a key cannot carry " + string(s) + ", which its creator lacks"})
		}
	}
	if in.Tier != "" {
		errs = append(errs, checkText("tier", in.Tier, 64, true)...)
	}
	if in.ExpiresAt != nil {
		if e := checkTime("expiresAt", *in.ExpiresAt); e != nil {
			errs = append(errs, e...)
		} else if !in.ExpiresAt.After(now) {
			errs = append(errs, FieldError{"expiresAt", "expiresAt must be in the future"})
		}
	}
	return errs
}

// MaxRotationOverlap bounds how long a rotated key keeps working beside its successor.
const MaxRotationOverlap = 30 * 24 * time.Hour

// RotationOverlap turns a client's overlap in seconds into the duration
// APIKeyService.Rotate takes. Both doors use it: the range is checked on
// the seconds, before they are multiplied, because a product that overflows
// int64 wraps and can land inside the range (18446744074 s wraps to 0.29 s).
// Codes: invalid.
func RotationOverlap(seconds int64) (time.Duration, error) {
	limit := int64(MaxRotationOverlap / time.Second)
	if seconds < 0 || seconds > limit {
		return 0, Invalid("Invalid request body", FieldError{"overlapSeconds",
			fmt.Sprintf("overlapSeconds must be between 0 and %d (30 days)", limit)})
	}
	return time.Duration(seconds) * time.Second, nil
}
