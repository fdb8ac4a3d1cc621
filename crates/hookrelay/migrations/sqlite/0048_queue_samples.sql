-- The overview's queue chart: each tenant's pending deliveries, sampled by the alert loop (every
-- few seconds, on every node that runs it; the latest sample of a minute wins). A tenant with
-- nothing pending has no row: its queue was empty. Kept 35 days, like the hour rows of
-- delivery_stats.
CREATE TABLE IF NOT EXISTS queue_samples (
    tenant_id TEXT NOT NULL,
    minute BIGINT NOT NULL,
    pending BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, minute)
);
CREATE INDEX IF NOT EXISTS queue_samples_minute ON queue_samples (minute);
