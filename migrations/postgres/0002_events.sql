-- The outbox: one row per committed change, written in the change's transaction.
CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    payload     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_created ON events (created_at);

-- Per tenant: its events below this id have been pruned, so resuming from
-- before it may miss some and is refused.
CREATE TABLE event_retention (
    tenant_id    TEXT PRIMARY KEY,
    pruned_below BIGINT NOT NULL
);
