-- The tenant's own impact types, severities and phase generations (the status-page model),
-- beside the built-in ones that live in code; incidents point at a phase;
-- affects carry their impact type and severity value.
CREATE TABLE impact_types (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- lower-cased display name: names are unique per tenant, case-insensitively
    name_key     TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);
CREATE UNIQUE INDEX impact_types_name ON impact_types (tenant_id, name_key);

CREATE TABLE severities (
    tenant_id    TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    value        INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name_key)
);
CREATE UNIQUE INDEX severities_value ON severities (tenant_id, value);

CREATE TABLE phase_generations (
    tenant_id  TEXT NOT NULL,
    generation INTEGER NOT NULL,
    phases     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, generation)
);

ALTER TABLE incidents ADD COLUMN phase_generation INTEGER;
ALTER TABLE incidents ADD COLUMN phase_order INTEGER;

ALTER TABLE incident_affects ADD COLUMN impact_type_id TEXT NOT NULL DEFAULT '';
ALTER TABLE incident_affects ADD COLUMN severity INTEGER NOT NULL DEFAULT 0;
-- Affects written by monitoring before this migration: the level's built-in type and value.
UPDATE incident_affects SET
    impact_type_id = CASE impact WHEN 0 THEN 'imp_maintenance' WHEN 1 THEN 'imp_minor' WHEN 2 THEN 'imp_major' ELSE 'imp_outage' END,
    severity = (impact + 1) * 25;
-- impact_type_id first: the planner must not take it for a tenant-only filter
CREATE INDEX incident_affects_type ON incident_affects (impact_type_id, tenant_id);
