-- Incidents, API keys and the per-tenant bookkeeping that keeps totalCount cheap.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    hash         BYTEA NOT NULL,
    scopes       TEXT NOT NULL,
    tier         TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    -- byte order, so that title sorting and cursors agree with SQLite
    title         TEXT COLLATE "C" NOT NULL,
    description   TEXT,
    severity      TEXT NOT NULL,
    severity_rank SMALLINT NOT NULL,
    status        TEXT NOT NULL,
    status_rank   SMALLINT NOT NULL,
    service       TEXT,
    tags          JSONB NOT NULL DEFAULT '[]',
    occurred_at   TIMESTAMPTZ NOT NULL,
    resolved_at   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    created_by    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    is_deleted    BOOLEAN NOT NULL DEFAULT FALSE
);
-- One index per sort order, each ending in id for the keyset tiebreak; live rows only.
CREATE INDEX incidents_occurred ON incidents (tenant_id, occurred_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_created  ON incidents (tenant_id, created_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_updated  ON incidents (tenant_id, updated_at, id) WHERE NOT is_deleted;
CREATE INDEX incidents_severity ON incidents (tenant_id, severity_rank, id) WHERE NOT is_deleted;
CREATE INDEX incidents_status   ON incidents (tenant_id, status_rank, id) WHERE NOT is_deleted;
CREATE INDEX incidents_title    ON incidents (tenant_id, title, id) WHERE NOT is_deleted;
CREATE INDEX incidents_service  ON incidents (tenant_id, service, occurred_at, id) WHERE NOT is_deleted;
-- keyword search: ILIKE '%word%' on either column uses these trigram indexes
CREATE INDEX incidents_title_trgm ON incidents USING gin (title gin_trgm_ops);
CREATE INDEX incidents_description_trgm ON incidents USING gin (description gin_trgm_ops);

-- Exact live-incident counts per status and severity, adjusted in each write's
-- transaction. Each write touches one random shard, so that concurrent writers
-- of one tenant do not queue on the same rows; readers sum the shards.
CREATE TABLE incident_counts (
    tenant_id TEXT NOT NULL,
    status    TEXT NOT NULL,
    severity  TEXT NOT NULL,
    shard     SMALLINT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, status, severity, shard)
);

-- The tenant's write generation is the sum of its shards; every write adds 1
-- to one shard in its transaction, so the sum moves with every committed
-- write, and a count cached at generation G is exact while the sum is G.
CREATE TABLE tenant_state (
    tenant_id  TEXT NOT NULL,
    shard      SMALLINT NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, shard)
);
