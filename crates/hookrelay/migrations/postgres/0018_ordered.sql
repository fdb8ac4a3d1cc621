-- Ordered delivery: a webhook with `ordered` gets its deliveries one at a time, in the order
-- they were created (their events' acceptance order); the claim takes only its oldest pending one.
ALTER TABLE webhooks ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX IF NOT EXISTS deliveries_webhook_pending_order ON deliveries (webhook_id, created_at, id) WHERE status = 'pending';
