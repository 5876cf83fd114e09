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

-- Events below this id have been pruned: resuming from before it may miss some.
CREATE TABLE event_retention (
    singleton    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    pruned_below BIGINT NOT NULL
);
INSERT INTO event_retention (singleton, pruned_below) VALUES (TRUE, 0);
