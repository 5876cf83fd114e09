-- Every attempt of a delivery (the delivery row keeps the latest): its number, time, the receiver's status or the
-- error, the latency and the start of the answer. Written with the attempt's outcome; gone with its delivery.
CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL,
    n                INTEGER NOT NULL,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    at               TEXT NOT NULL,
    status           INTEGER NOT NULL,
    error            TEXT NOT NULL,
    latency_us       INTEGER NOT NULL,
    response_excerpt TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id);
