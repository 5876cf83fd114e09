-- Outgoing webhooks (Standard Webhooks). An endpoint is a tenant's receiver; its secret signs every message (and the
-- previous one too, until previous_secret_until, after a rotation).
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL,
    events                JSONB NOT NULL,
    filter                JSONB NOT NULL,
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT NOT NULL,
    failing_since         TIMESTAMPTZ,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    created_by            TEXT NOT NULL,
    updated_by            TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at, id);

-- One message queued for one endpoint. seq orders an endpoint's deliveries: only the oldest pending one of an
-- endpoint is ever sent (one in flight per endpoint, so each resource's messages arrive in order). payload is the
-- exact body, so that every attempt sends the same bytes; message_id is the webhook-id header, kept by redeliveries.
-- A worker leases a delivery (lease_until, lease_token) while it sends it, outside any transaction; a lease that
-- ends without a record (a crash) makes the delivery due again.
CREATE TABLE webhook_deliveries (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    type             TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_status      INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    last_latency_us  BIGINT NOT NULL,
    last_attempt_at  TIMESTAMPTZ,
    response_excerpt TEXT NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    lease_until      TIMESTAMPTZ,
    lease_token      TEXT,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (tenant_id, endpoint_id, seq);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- The position of the last event fanned out to the endpoints (one row, locked by the instance fanning out). It is an
-- event's position, never a gate: committed events' ids are durable across a database crash, gates are not.
CREATE TABLE webhook_cursor (
    id  INTEGER PRIMARY KEY,
    tx  BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO webhook_cursor (id, tx, seq) VALUES (1, 0, 0);

-- The last status component.status messages reported per component: a message goes out when a change moves a
-- component away from it.
CREATE TABLE webhook_component_status (
    tenant_id    TEXT NOT NULL,
    component_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, component_id)
);
