-- A claim past a held backlog (an open circuit's deliveries, due first) goes webhook by webhook;
-- each webhook's due deliveries are then one index range in due order, not a sort of all of them.
-- The (webhook_id, status) prefix still serves what the old index did.
DROP INDEX IF EXISTS deliveries_webhook;
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, status, next_attempt_at);
