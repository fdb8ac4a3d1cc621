-- Shared rate limits when several nodes use one database (PostgreSQL): one row per limited key
-- (`webhook:<id>`, `tenant:<id>`, `source:<id>`) holding the theoretical arrival time of the
-- generic cell rate algorithm (`tat_us`), and the last lease: how many slots it granted and the
-- clock it read (`at_us`). Nodes lease a few time slots at once, not one per request.
CREATE TABLE IF NOT EXISTS rate_slots (
    key TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL,
    granted BIGINT NOT NULL,
    at_us BIGINT NOT NULL
);
