package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// WebhookSecretKeyLen is the length of the key that seals webhook signing
// secrets at rest (AES-256-GCM).
const WebhookSecretKeyLen = 32

// sealedMark starts every sealed secret in webhook_endpoints, sealedPrefix
// those of this format; a value without the mark was written without a key
// and is read as it is.
const (
	sealedMark   = "sealed:"
	sealedPrefix = sealedMark + "v1:"
)

// secretBox seals webhook signing secrets, which the server must read back
// to sign (so they cannot be hashed like API keys): a copy of the database
// alone then signs nothing. Without a key it stores them as given.
type secretBox struct{ aead cipher.AEAD }

// ParseWebhookSecretKey reads the setting: the standard base64 of 32 bytes
// (e.g. `openssl rand -base64 32`); "" is no key.
func ParseWebhookSecretKey(s string) ([]byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != WebhookSecretKeyLen {
		return nil, fmt.Errorf("webhook secret key: want the base64 of %d random bytes (openssl rand -base64 32)", WebhookSecretKeyLen)
	}
	return key, nil
}

func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) == 0 {
		return &secretBox{}, nil
	}
	if len(key) != WebhookSecretKeyLen {
		return nil, fmt.Errorf("webhook secret key: %d bytes, want %d", len(key), WebhookSecretKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	return &secretBox{aead: aead}, nil
}

// seal returns what is stored for an endpoint's secret; the endpoint's id
// is bound to it, so a sealed value copied to another row does not open.
func (b *secretBox) seal(endpointID, secret string) string {
	if b.aead == nil {
		return secret
	}
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand never fails (Go 1.24+)
	out := b.aead.Seal(nonce, nonce, []byte(secret), []byte(endpointID))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// open returns the secret a stored value holds.
func (b *secretBox) open(endpointID, stored string) (string, error) {
	raw, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		if strings.HasPrefix(stored, sealedMark) {
			return "", errors.New("webhook secret: sealed in a format this version does not know")
		}
		return stored, nil
	}
	if b.aead == nil {
		return "", errors.New("webhook secret is sealed, and no INCIDENTD_WEBHOOK_SECRET_KEY is set")
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", errors.New("webhook secret: malformed sealed value")
	}
	plain, err := b.aead.Open(nil, data[:b.aead.NonceSize()], data[b.aead.NonceSize():], []byte(endpointID))
	if err != nil {
		return "", errors.New("webhook secret: does not open with INCIDENTD_WEBHOOK_SECRET_KEY (another key sealed it)")
	}
	return string(plain), nil
}

// signingSecrets opens what a claimed endpoint signs with: its secret, and
// the one it replaced while that still signs. An endpoint whose secret does
// not open is logged and left out of the claim.
func (s *Store) signingSecrets(endpointID, secret string, prev *string, prevUntil *dbTime, now time.Time) ([]string, error) {
	cur, err := s.box.open(endpointID, secret)
	if err != nil {
		slog.Error("webhook endpoint cannot sign", "endpoint", endpointID, "err", err)
		return nil, err
	}
	out := []string{cur}
	if prev != nil && prevUntil != nil && now.Before(prevUntil.Time) {
		// The rotated-out secret only adds a signature: without it the
		// current one still signs.
		if old, err := s.box.open(endpointID, *prev); err != nil {
			slog.Warn("webhook endpoint: the previous secret does not open; signing with the current one only", "endpoint", endpointID, "err", err)
		} else {
			out = append(out, old)
		}
	}
	return out, nil
}

// SealWebhookSecrets seals, with the store's key, every webhook secret
// written before the key was set; it returns how many endpoints it sealed.
// Without a key it does nothing. Each row is changed only if it still holds
// what was read, so a rotation meanwhile is kept. tenants, when given,
// narrows it to theirs (tests sharing a database).
func (s *Store) SealWebhookSecrets(ctx context.Context, tenants ...string) (int, error) {
	if s.box.aead == nil {
		return 0, nil
	}
	type row struct {
		id, secret string
		prev       *string
	}
	var todo []row
	w := &where{}
	unsealed := w.arg(sealedMark + "%")
	w.and("(secret NOT LIKE " + unsealed + " OR (previous_secret IS NOT NULL AND previous_secret NOT LIKE " + unsealed + "))")
	if len(tenants) > 0 {
		in(w, "tenant_id", tenants)
	}
	rows, err := s.query(ctx, `SELECT id, secret, previous_secret FROM webhook_endpoints WHERE `+w.String(), w.args...)
	if err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.secret, &r.prev); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal webhook secrets: %w", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	sealed := 0
	for _, r := range todo {
		secret, prev := r.secret, r.prev
		if !strings.HasPrefix(secret, sealedMark) {
			secret = s.box.seal(r.id, secret)
		}
		if prev != nil && !strings.HasPrefix(*prev, sealedMark) {
			p := s.box.seal(r.id, *prev)
			prev = &p
		}
		n, err := s.exec(ctx, `UPDATE webhook_endpoints SET secret = $1, previous_secret = $2
			WHERE id = $3 AND secret = $4 AND (previous_secret IS NULL AND $5 = '' OR previous_secret = $5)`,
			secret, prev, r.id, r.secret, deref(r.prev))
		if err != nil {
			return sealed, fmt.Errorf("seal webhook secret of %s: %w", r.id, err)
		}
		sealed += int(n)
	}
	return sealed, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
