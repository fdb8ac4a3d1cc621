-- Alert crossings (issue 11, health): whether a tenant's backlog, or a webhook's failure rate, is
-- over its HOOKRELAY_ALERT_* threshold. Flipping the flag and writing the operational event
-- happen in one transaction, so each crossing is told once, whatever the number of nodes.
ALTER TABLE tenants ADD COLUMN backlog_alerting BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE webhooks ADD COLUMN rate_alerting BOOLEAN NOT NULL DEFAULT FALSE;
