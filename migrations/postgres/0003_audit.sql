-- The audit trail (the platform conventions: every mutating operation logged with user and time),
-- written in the mutation's own transaction.
CREATE TABLE audit_events (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    -- which key or token acted (several keys may act for one actor)
    credential_id TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    changes       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_resource ON audit_events (tenant_id, resource_id, id);
