-- Inbound sources and the log of requests they received. Times are integer milliseconds since
-- the Unix epoch; JSON documents are TEXT; booleans are BOOLEAN.

CREATE TABLE sources (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    -- Unique across tenants: `POST /ingest/{name}` carries no tenant.
    name                TEXT NOT NULL UNIQUE,
    provider            TEXT NOT NULL,
    config              TEXT NOT NULL,
    -- Written and read through encode/decode_source_secret (encryption at rest).
    secret              TEXT,
    active              BOOLEAN NOT NULL,
    allow_unsigned      BOOLEAN NOT NULL DEFAULT FALSE,
    rate_limit_per_min  BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX sources_tenant ON sources (tenant_id, id);

CREATE TABLE inbound_requests (
    id               TEXT PRIMARY KEY,
    source_id        TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    -- accepted | duplicate | rejected | rate_limited
    status           TEXT NOT NULL,
    reason           TEXT,
    event_id         TEXT,
    event_type       TEXT,
    -- The provider's delivery id (X-GitHub-Delivery, Stripe event id, webhook-id, ...).
    provider_id      TEXT,
    request_id       TEXT,
    -- Selected request headers (JSON object), never credentials.
    headers          TEXT NOT NULL,
    -- The raw body, capped; NULL when it is the event's data verbatim.
    body             TEXT,
    body_truncated   BOOLEAN NOT NULL DEFAULT FALSE,
    body_size        BIGINT NOT NULL
);
-- Listing a source's requests newest first (ids sort by time), optionally by status.
CREATE INDEX inbound_requests_source ON inbound_requests (source_id, id);
CREATE INDEX inbound_requests_source_status ON inbound_requests (source_id, status, id);
-- Pruning by age.
CREATE INDEX inbound_requests_received ON inbound_requests (received_at);
