-- Failed dashboard logins counted in the database when several nodes share it (PostgreSQL), so
-- a lockout holds on every node: one row per account (`account:<email>`) or client address
-- (`address:<ip>`), counting failures in a fixed window that starts at `since` (ms).
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    since BIGINT NOT NULL
);
