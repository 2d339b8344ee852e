-- Windowed counters (RateLimiter::counters_*): SMS-pumping segments and usage periods. One row per namespace, time
-- slot (Unix ms of its start) and key; a window's figure is the sum of its slots. Expired rows are purged in the
-- background. Mirrors the SQLite migration of the same number.
CREATE TABLE counters (
    ns         TEXT NOT NULL,
    slot       BIGINT NOT NULL,
    key        TEXT NOT NULL,
    value      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT counters_pkey PRIMARY KEY (ns, slot, key)
);
CREATE INDEX counters_expires_at ON counters (expires_at);
