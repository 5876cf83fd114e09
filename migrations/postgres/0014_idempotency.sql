-- Idempotency keys: the kept answer of a create, per tenant, credential and key, for 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    done          BOOLEAN NOT NULL,
    status        INTEGER NOT NULL,
    location      TEXT NOT NULL,
    body          BYTEA NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, credential_id, key)
);
CREATE INDEX idempotency_keys_started ON idempotency_keys (started_at);
