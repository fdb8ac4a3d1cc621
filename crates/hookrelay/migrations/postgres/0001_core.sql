-- Core schema: tenants, API keys, webhooks, the immutable event log, deliveries (the queue) and
-- attempts. Times are integer milliseconds since the Unix epoch; JSON documents are TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    quotas      TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    server_admin  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE webhooks (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    url                 TEXT NOT NULL,
    kind                TEXT NOT NULL,
    description         TEXT,
    active              BOOLEAN NOT NULL,
    events              TEXT NOT NULL,
    headers             TEXT NOT NULL,
    rate_limit_per_sec  BIGINT,
    templates           TEXT NOT NULL,
    retry_schedule      TEXT,
    secrets             TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    type             TEXT NOT NULL,
    source           TEXT,
    idempotency_key  TEXT,
    data             TEXT NOT NULL,
    timestamp        BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_tenant ON events (tenant_id, id);

CREATE TABLE deliveries (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    event_id              TEXT NOT NULL,
    webhook_id            TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    source                TEXT,
    status                TEXT NOT NULL,
    attempts              BIGINT NOT NULL DEFAULT 0,
    next_attempt_at       BIGINT,
    lease_owner           TEXT,
    lease_until           BIGINT,
    last_response_status  BIGINT,
    last_error            TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    delivered_at          BIGINT,
    failed_at             BIGINT
);
-- The queue: only pending rows, in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, status);
CREATE INDEX deliveries_failed ON deliveries (tenant_id, failed_at) WHERE status = 'failed';

CREATE TABLE attempts (
    delivery_id      TEXT NOT NULL,
    n                BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    request_headers  TEXT NOT NULL,
    response_status  BIGINT,
    response_body    TEXT,
    error            TEXT,
    error_kind       TEXT,
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX attempts_started ON attempts (started_at);
