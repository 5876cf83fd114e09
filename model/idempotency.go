package model

import (
	"context"
	"fmt"
	"time"
)

// Idempotent creates: a client sends a key with a create; the first
// request with it runs and its answer is kept for IdempotencyTTL; a retry
// with the same key and the same request gets that answer again, never a
// second resource; the same key with another request is refused; a retry
// while the first still runs waits for it (then, past IdempotencyWait,
// conflicts). Keys are scoped by tenant and credential.

// Bounds of idempotency keys.
const (
	IdempotencyTTL = 24 * time.Hour
	// IdempotencyLease is how long a request may hold a key unfinished
	// before another may take it over (its server died mid-request).
	IdempotencyLease = time.Minute
	// IdempotencyWait is how long a duplicate waits for the first.
	IdempotencyWait   = 10 * time.Second
	MaxIdempotencyKey = 255
)

// StoredResponse is a kept answer.
type StoredResponse struct {
	Status   int
	Location string
	Body     []byte
}

// IdempotencyStore keeps idempotency keys, scoped by the caller's tenant
// and credential.
type IdempotencyStore interface {
	// Begin claims key for a request whose fingerprint is hash. It returns
	// the kept answer of an earlier request with the same key (replay), or
	// claims the key (claimed: run the request, then Finish or Abandon).
	// Codes: invalid (the key), business_rule (the key was used for
	// another request), conflict (the first request is still running after
	// IdempotencyWait).
	Begin(ctx context.Context, key, hash string) (replay *StoredResponse, claimed bool, err error)
	// Finish keeps the answer of a claimed key.
	Finish(ctx context.Context, key string, res StoredResponse) error
	// Abandon releases a claimed key (the request failed in a way a retry
	// may fix), so that a retry runs again.
	Abandon(ctx context.Context, key string) error
}

// CheckIdempotencyKey validates a key: 1 to MaxIdempotencyKey printable
// ASCII characters.
func CheckIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKey {
		return Invalid("Invalid idempotency key", FieldError{Field: "Idempotency-Key",
			Message: fmt.Sprintf("an idempotency key is 1 to %d printable ASCII characters", MaxIdempotencyKey)})
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return Invalid("Invalid idempotency key", FieldError{Field: "Idempotency-Key",
				Message: fmt.Sprintf("an idempotency key is 1 to %d printable ASCII characters", MaxIdempotencyKey)})
		}
	}
	return nil
}
