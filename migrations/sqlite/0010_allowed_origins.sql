-- The web origins whose pages may embed a tenant's public status (a JSON array of strings).
ALTER TABLE tenant_settings ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
