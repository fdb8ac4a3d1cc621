-- Retention: how many days a tenant's events (with their deliveries, attempts and inbound
-- requests) are kept; NULL follows the server's HOOKRELAY_RETENTION_DAYS. Issue 11 (health);
-- 0007 was already applied without it.
ALTER TABLE tenants ADD COLUMN retention_days BIGINT;
