-- Endpoint health: each webhook's circuit breaker (closed / open / half_open, its run of
-- consecutive failed attempts, until when it is open and how often it re-opened, for the
-- doubling cooldown) and why hookrelay disabled it by itself ('gone', 'failing').
ALTER TABLE webhooks ADD COLUMN circuit_state TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE webhooks ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN circuit_open_until BIGINT;
ALTER TABLE webhooks ADD COLUMN circuit_opens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since BIGINT;
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
ALTER TABLE webhooks ADD COLUMN disabled_at BIGINT;
