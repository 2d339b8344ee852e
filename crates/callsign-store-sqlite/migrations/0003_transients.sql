-- Short-lived server-side records: browser sessions, login transactions, authorization codes, one-time links.
-- `key` is a hash of the random token the browser holds (never the token). Expired rows are ignored on read and
-- purged in the background. Mirrors the migration of the same number for the other backend.
CREATE TABLE transients (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT transients_pkey PRIMARY KEY (kind, key)
);
CREATE INDEX transients_expires_at ON transients (expires_at);
