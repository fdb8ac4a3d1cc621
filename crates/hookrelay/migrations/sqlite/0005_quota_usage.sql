-- Event counts per tenant and time bucket, for events_per_minute / events_per_day quotas.
-- Written in the same transaction as the events, so the counts are exact across nodes.
CREATE TABLE tenant_usage (
    tenant_id     TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    bucket_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket, bucket_start)
);
