-- The outbox: one row per committed change, written in the change's transaction.
-- AUTOINCREMENT: ids are never reused, so a resume point stays meaningful.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_created ON events (created_at);

-- Per tenant: its events below this id have been pruned, so resuming from
-- before it may miss some and is refused.
CREATE TABLE event_retention (
    tenant_id    TEXT PRIMARY KEY,
    pruned_below INTEGER NOT NULL
);
