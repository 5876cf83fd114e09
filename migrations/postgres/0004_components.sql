-- Components of the status-page model; labels are the monitoring contract's attributes.
CREATE TABLE components (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL,
    -- lower-cased display name, for prefix search
    name_key     TEXT COLLATE "C" NOT NULL,
    labels       JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);
CREATE INDEX components_name ON components (tenant_id, name_key, id);
