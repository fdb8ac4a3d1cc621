-- Destinations and routing: the event catalog and payload filters on webhooks.
-- Built-in event types are defined in code (src/destinations/catalog.rs), not seeded here: a row
-- is a tenant's own type or its customisation of a built-in, which then wins over the built-in.

CREATE TABLE event_types (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    data_schema  TEXT,
    example      TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- A webhook's payload filter (JSON), evaluated at fan-out after its event-type patterns.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
