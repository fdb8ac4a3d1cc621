-- Delivery statistics for the dashboard's overview and per-webhook charts: additive counters per
-- (tenant, row width, bucket, webhook, shard), written with the attempts that cause them. Rows are
-- a minute (width 60000, kept 2 days) or an hour (width 3600000, kept 35 days) wide; `shard` is
-- derived from the writing node, so nodes never contend for one row. l0..l15 count the
-- emit→delivery latencies of succeeded deliveries in the buckets of
-- hookrelay_domain::stats::LATENCY_BOUNDS_MS.
CREATE TABLE IF NOT EXISTS delivery_stats (
    tenant_id TEXT NOT NULL,
    width_ms BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    webhook_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    retried BIGINT NOT NULL DEFAULT 0,
    succeeded BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    l0 BIGINT NOT NULL DEFAULT 0, l1 BIGINT NOT NULL DEFAULT 0, l2 BIGINT NOT NULL DEFAULT 0,
    l3 BIGINT NOT NULL DEFAULT 0, l4 BIGINT NOT NULL DEFAULT 0, l5 BIGINT NOT NULL DEFAULT 0,
    l6 BIGINT NOT NULL DEFAULT 0, l7 BIGINT NOT NULL DEFAULT 0, l8 BIGINT NOT NULL DEFAULT 0,
    l9 BIGINT NOT NULL DEFAULT 0, l10 BIGINT NOT NULL DEFAULT 0, l11 BIGINT NOT NULL DEFAULT 0,
    l12 BIGINT NOT NULL DEFAULT 0, l13 BIGINT NOT NULL DEFAULT 0, l14 BIGINT NOT NULL DEFAULT 0,
    l15 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, width_ms, bucket, webhook_id, shard)
);
-- Pruning walks buckets across tenants.
CREATE INDEX IF NOT EXISTS delivery_stats_bucket ON delivery_stats (width_ms, bucket);
