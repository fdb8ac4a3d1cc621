-- The fan-out index (src/store/fanout.rs) keeps each tenant's decoded webhooks between ingest
-- commits, valid for one hooks_generation. Every change to what fan-out reads — a webhook
-- created, deleted, or its configuration (and secrets) changed, or the tenant's quotas — bumps
-- it here, in the database, so every node sees it on its next commit. The columns the delivery
-- path writes (circuit state, failure counts, auto-disable) are deliberately not listed: ingest
-- reads active and circuit_state live, and a failing webhook must not invalidate on every
-- attempt. A new configuration column of webhooks must be added to the UPDATE OF list (the
-- store suite's scenario_fan_out_index checks each column).
ALTER TABLE tenants ADD COLUMN hooks_generation INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER IF NOT EXISTS webhooks_generation_insert AFTER INSERT ON webhooks
BEGIN
    UPDATE tenants SET hooks_generation = hooks_generation + 1 WHERE id = NEW.tenant_id;
END;

CREATE TRIGGER IF NOT EXISTS webhooks_generation_delete AFTER DELETE ON webhooks
BEGIN
    UPDATE tenants SET hooks_generation = hooks_generation + 1 WHERE id = OLD.tenant_id;
END;

CREATE TRIGGER IF NOT EXISTS webhooks_generation_update
AFTER UPDATE OF tenant_id, url, url_sealed, kind, description, events, headers, rate_limit_per_sec,
    templates, retry_schedule, secrets, filter, transform, target, ordered ON webhooks
BEGIN
    UPDATE tenants SET hooks_generation = hooks_generation + 1
    WHERE id IN (OLD.tenant_id, NEW.tenant_id);
END;

CREATE TRIGGER IF NOT EXISTS tenants_generation_quotas AFTER UPDATE OF quotas ON tenants
BEGIN
    UPDATE tenants SET hooks_generation = hooks_generation + 1 WHERE id = NEW.id;
END;
