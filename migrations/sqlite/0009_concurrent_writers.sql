-- See the PostgreSQL twin. SQLite has one writer: event ids grow in commit
-- order, so tx stays 0 and positions are (0, id).
ALTER TABLE events ADD COLUMN tx INTEGER NOT NULL DEFAULT 0;
DROP INDEX events_tenant;
CREATE INDEX events_tenant ON events (tenant_id, tx, id);
CREATE INDEX events_position ON events (tx, id);

ALTER TABLE event_retention RENAME COLUMN pruned_below TO pruned_seq;
ALTER TABLE event_retention ADD COLUMN pruned_tx INTEGER NOT NULL DEFAULT 0;
UPDATE event_retention SET pruned_seq = pruned_seq - 1;

DROP TABLE incident_counts;
DROP TABLE tenant_state;

ALTER TABLE incidents ADD COLUMN title_fold TEXT;
ALTER TABLE incidents ADD COLUMN description_fold TEXT;

CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    key  BLOB NOT NULL
);
