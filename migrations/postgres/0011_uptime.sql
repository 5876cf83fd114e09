-- Uptime history. Each component's status level (the worst impact, 0..3, of the open incidents affecting it, as the
-- status summary shows it) over time: one row per stretch at a level, ended_at NULL while it is the current one.
-- Operational time is not recorded: it is the time no row covers, from the component's creation on (so existing
-- components need no first row). Writes that change a level close the open row and open the next in the same
-- transaction.
CREATE TABLE uptime_intervals (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    component_id TEXT NOT NULL,
    level        SMALLINT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE INDEX uptime_intervals_component ON uptime_intervals (tenant_id, component_id, ended_at);
-- At most one current level per component.
CREATE UNIQUE INDEX uptime_intervals_open ON uptime_intervals (tenant_id, component_id) WHERE ended_at IS NULL;

-- What elapsed of maintenance windows deleted once begun (windows still stored are read from their own table).
CREATE TABLE uptime_maintenance (
    tenant_id    TEXT NOT NULL,
    component_id TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX uptime_maintenance_component ON uptime_maintenance (tenant_id, component_id, ended_at);
