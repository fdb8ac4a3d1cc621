-- Portal links: a tenant's dashboard handed to someone without an account (a platform's own
-- customer), with one role (editor or viewer), until `expires_at` or until revoked. Only the
-- SHA-256 of the token (`hrp_…`) is stored.
CREATE TABLE IF NOT EXISTS portal_links (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS portal_links_by_tenant ON portal_links (tenant_id, id);
