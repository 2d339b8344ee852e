-- Callsign schema, SQLite flavour. Column names and types mirror the PostgreSQL migration so that the shared SQL
-- in callsign_store::sql runs on both: timestamps are BIGINT unix milliseconds, documents are JSON in TEXT.

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE settings (
    name        TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    public_jwk  TEXT NOT NULL,
    secret_name TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE INDEX signing_keys_created ON signing_keys (created_at, kid);

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX clients_created ON clients (created_at, client_id);

CREATE TABLE client_grants (
    id          TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients (client_id),
    audience    TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (client_id, audience)
);
CREATE INDEX client_grants_created ON client_grants (created_at, id);
CREATE INDEX client_grants_audience ON client_grants (audience);

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY NOT NULL,
    email         TEXT UNIQUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login    BIGINT,
    logins_count  BIGINT NOT NULL DEFAULT 0,
    data          TEXT NOT NULL
);
CREATE INDEX users_created ON users (created_at, user_id);

CREATE TABLE logs (
    log_id      TEXT PRIMARY KEY NOT NULL,
    date        BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    user_id     TEXT,
    client_id   TEXT,
    data        TEXT NOT NULL
);
CREATE INDEX logs_date ON logs (date, log_id);
CREATE INDEX logs_type ON logs (event_type);
CREATE INDEX logs_user ON logs (user_id);
