-- Maintenance windows' messages (maintenance.created, .started, .ended) not yet queued: a window's creation writes its
-- row in the same transaction, and its deletion marks it cancelled (with the window as it was, for the message), so
-- no committed change is missed; a window's start and end are moments, not writes, so the webhook fan-out queues
-- them once they pass. announced is the last message queued ('' for none); the row goes once ended is.
CREATE TABLE webhook_maintenance (
    window_id    TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    announced    TEXT NOT NULL,
    starts_at    TEXT NOT NULL,
    ends_at      TEXT NOT NULL,
    cancelled_at TEXT,
    snapshot     TEXT
);
CREATE INDEX webhook_maintenance_due ON webhook_maintenance (starts_at);
