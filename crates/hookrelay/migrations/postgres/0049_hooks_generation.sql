-- The fan-out index (src/store/fanout.rs) keeps each tenant's decoded webhooks between ingest
-- commits, valid for one hooks_generation. Every change to what fan-out reads — a webhook
-- created, deleted, or its configuration (and secrets) changed, or the tenant's quotas — bumps
-- it here, in the database, so every node sees it on its next commit. The columns the delivery
-- path writes (circuit state, failure counts, auto-disable) are deliberately not listed: ingest
-- reads active and circuit_state live, and a failing webhook must not invalidate on every
-- attempt (nor lock its tenant's row from the record path). A new configuration column of
-- webhooks must be added to the UPDATE OF list (the store suite's scenario_fan_out_index checks
-- each column).
ALTER TABLE tenants ADD COLUMN hooks_generation BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION hookrelay_bump_hooks_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE tenants SET hooks_generation = hooks_generation + 1 WHERE id = OLD.tenant_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        UPDATE tenants SET hooks_generation = hooks_generation + 1 WHERE id = NEW.tenant_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER webhooks_hooks_generation
AFTER INSERT OR DELETE OR UPDATE OF tenant_id, url, url_sealed, kind, description, events, headers,
    rate_limit_per_sec, templates, retry_schedule, secrets, filter, transform, target, ordered
ON webhooks FOR EACH ROW EXECUTE FUNCTION hookrelay_bump_hooks_generation();

CREATE OR REPLACE FUNCTION hookrelay_bump_quotas_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.hooks_generation := OLD.hooks_generation + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER tenants_quotas_generation
BEFORE UPDATE OF quotas ON tenants FOR EACH ROW EXECUTE FUNCTION hookrelay_bump_quotas_generation();
