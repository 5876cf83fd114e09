-- Incidents affect components at an impact (the status-page model's "affects"; the monitoring contract's impacts 0..3),
-- and keep a timeline of updates.
CREATE TABLE incident_affects (
    tenant_id    TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    component_id TEXT NOT NULL,
    impact       SMALLINT NOT NULL,
    PRIMARY KEY (incident_id, component_id)
);
CREATE INDEX incident_affects_component ON incident_affects (tenant_id, component_id);

CREATE TABLE incident_updates (
    tenant_id    TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    ord          INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (incident_id, ord)
);
