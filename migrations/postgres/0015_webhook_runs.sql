-- An endpoint's queue is sent by one worker at a time, which leases the endpoint (lease_until, lease_token) and sends
-- a run of its oldest pending deliveries in order; recording outcomes renews the lease, and a lease that runs out (a
-- crash) lets another instance take the endpoint over. lease_until stays set (to the run's end) after a release, so
-- that claims can serve the endpoints that waited longest first.
ALTER TABLE webhook_endpoints ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE webhook_endpoints ADD COLUMN lease_token TEXT;
CREATE INDEX webhook_endpoints_runs ON webhook_endpoints (lease_until) WHERE enabled;
