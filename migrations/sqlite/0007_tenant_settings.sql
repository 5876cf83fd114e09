-- Per-tenant settings; status_public publishes the status summary without credentials.
CREATE TABLE tenant_settings (
    tenant_id     TEXT PRIMARY KEY,
    status_public INTEGER NOT NULL
);
