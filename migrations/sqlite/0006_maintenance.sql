-- Scheduled maintenance windows: while active, their components get no automatic incidents.
CREATE TABLE maintenance_windows (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    description TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX maintenance_windows_tenant ON maintenance_windows (tenant_id, ends_at);

CREATE TABLE maintenance_components (
    tenant_id    TEXT NOT NULL,
    window_id    TEXT NOT NULL,
    component_id TEXT NOT NULL,
    PRIMARY KEY (window_id, component_id)
);
CREATE INDEX maintenance_components_component ON maintenance_components (tenant_id, component_id);
