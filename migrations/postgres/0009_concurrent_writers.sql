-- One tenant's writers run in parallel. Events are ordered by the id of the
-- transaction that wrote them, then by row id: a reader delivers an event
-- only once every older transaction has ended, so no lock orders them.
-- Counts are rolled forward from events, so the counter and generation
-- rows every write touched are gone. Keyword search runs over folded copies
-- of title and description that the code computes (model.Fold).
ALTER TABLE events ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
DROP INDEX events_tenant;
CREATE INDEX events_tenant ON events (tenant_id, tx, id);
CREATE INDEX events_position ON events (tx, id);

-- The newest pruned position per tenant: resuming from before it is refused.
ALTER TABLE event_retention RENAME COLUMN pruned_below TO pruned_seq;
ALTER TABLE event_retention ADD COLUMN pruned_tx BIGINT NOT NULL DEFAULT 0;
UPDATE event_retention SET pruned_seq = pruned_seq - 1, pruned_tx = pg_current_xact_id()::text::bigint;

DROP TABLE incident_counts;
DROP TABLE tenant_state;

-- Filled by the store after migrating (Store.Migrate), then on every write.
ALTER TABLE incidents ADD COLUMN title_fold TEXT COLLATE "C";
ALTER TABLE incidents ADD COLUMN description_fold TEXT COLLATE "C";
DROP INDEX incidents_title_trgm;
DROP INDEX incidents_description_trgm;
CREATE INDEX incidents_title_fold_trgm ON incidents USING gin (title_fold gin_trgm_ops);
CREATE INDEX incidents_description_fold_trgm ON incidents USING gin (description_fold gin_trgm_ops);

-- Keys the replicas share (the seal of event positions and audit ids).
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    key  BYTEA NOT NULL
);
