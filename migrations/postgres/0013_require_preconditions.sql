-- A tenant may require a precondition (If-Match, expectedVersion) on every change of an incident or component.
ALTER TABLE tenant_settings ADD COLUMN require_preconditions BOOLEAN NOT NULL DEFAULT false;
