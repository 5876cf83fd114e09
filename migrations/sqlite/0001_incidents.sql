-- Incidents, API keys and the per-tenant bookkeeping that keeps totalCount cheap.
-- Times are TEXT in a fixed-width UTC form (2006-01-02T15:04:05.000000Z), so
-- that text order is time order.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    hash         BLOB NOT NULL,
    scopes       TEXT NOT NULL,
    tier         TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT,
    severity      TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    status        TEXT NOT NULL,
    status_rank   INTEGER NOT NULL,
    service       TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',
    occurred_at   TEXT NOT NULL,
    resolved_at   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    is_deleted    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_occurred ON incidents (tenant_id, occurred_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_created  ON incidents (tenant_id, created_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_updated  ON incidents (tenant_id, updated_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_severity ON incidents (tenant_id, severity_rank, id) WHERE NOT is_deleted;
CREATE INDEX incidents_status   ON incidents (tenant_id, status_rank, id) WHERE NOT is_deleted;
CREATE INDEX incidents_title    ON incidents (tenant_id, title, id) WHERE NOT is_deleted;
CREATE INDEX incidents_service  ON incidents (tenant_id, service, occurred_at, id) WHERE NOT is_deleted;

-- Exact live-incident counts per status and severity, adjusted in each write's
-- transaction. Each write touches one random shard, so that concurrent writers
-- of one tenant do not queue on the same rows; readers sum the shards.
CREATE TABLE incident_counts (
    tenant_id TEXT NOT NULL,
    status    TEXT NOT NULL,
    severity  TEXT NOT NULL,
    shard     INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, status, severity, shard)
);

-- The tenant's write generation is the sum of its shards; every write adds 1
-- to one shard in its transaction, so the sum moves with every committed
-- write, and a count cached at generation G is exact while the sum is G.
CREATE TABLE tenant_state (
    tenant_id  TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, shard)
);
