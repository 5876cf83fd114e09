package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/incidentd/incidentd/model"
)

// Event positions and audit ids are global counters (transaction ids, row
// ids): shown as numbers they would tell a tenant how busy the others are.
// Clients see them sealed instead: one AES block holding the two 48-bit
// counters and 32 bits that bind the token to its tenant, under a key the
// replicas share through the database. A token is deterministic (the same
// position always reads the same), opaque, and refused by other tenants;
// a broker's sequence could later take the counters' place unseen.

const (
	positionKeyName = "positions"
	maxCounter      = 1<<48 - 1
)

type sealer struct {
	block cipher.Block
}

// sealer returns the store's token sealer, creating the shared key on
// first use (every replica reads the same row).
func (s *Store) sealer(ctx context.Context) (*sealer, error) {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if s.seal != nil {
		return s.seal, nil
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("position key: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO server_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, positionKeyName, key); err != nil {
		return nil, fmt.Errorf("position key: %w", err)
	}
	if err := s.queryRow(ctx, `SELECT key FROM server_keys WHERE name = $1`, positionKeyName).Scan(&key); err != nil {
		return nil, fmt.Errorf("position key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("position key: %w", err)
	}
	s.seal = &sealer{block: block}
	return s.seal, nil
}

func tenantCheck(tenant string) uint32 {
	sum := sha256.Sum256([]byte(tenant))
	return binary.BigEndian.Uint32(sum[:4])
}

// token seals p for tenant, with a prefix naming what it is ("" for none).
func (x *sealer) token(prefix, tenant string, p model.Position) string {
	var b [16]byte
	put48(b[0:6], uint64(p.Tx))
	put48(b[6:12], uint64(p.Seq))
	binary.BigEndian.PutUint32(b[12:16], tenantCheck(tenant))
	x.block.Encrypt(b[:], b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// open reads a token of tenant; ok is false for anything else.
func (x *sealer) open(prefix, tenant, tok string) (model.Position, bool) {
	if len(tok) != len(prefix)+22 || tok[:len(prefix)] != prefix {
		return model.Position{}, false
	}
	var b [16]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(tok[len(prefix):])); err != nil || n != 16 {
		return model.Position{}, false
	}
	x.block.Decrypt(b[:], b[:])
	if binary.BigEndian.Uint32(b[12:16]) != tenantCheck(tenant) {
		return model.Position{}, false
	}
	return model.Position{Tx: int64(get48(b[0:6])), Seq: int64(get48(b[6:12]))}, true
}

func put48(b []byte, v uint64) {
	var full [8]byte
	binary.BigEndian.PutUint64(full[:], v&maxCounter)
	copy(b, full[2:])
}

func get48(b []byte) uint64 {
	var full [8]byte
	copy(full[2:], b)
	return binary.BigEndian.Uint64(full[:])
}
