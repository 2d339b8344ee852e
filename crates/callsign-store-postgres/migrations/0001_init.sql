-- Callsign schema, PostgreSQL flavour. Column names and types mirror the SQLite migration so that the shared SQL
-- in callsign_store::sql runs on both: timestamps are BIGINT unix milliseconds, documents are JSON in TEXT.
-- Unique constraints are named: the store maps a violated constraint's name to the columns it reports in
-- StoreError::Conflict (see src/lib.rs).

CREATE TABLE secrets (
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT secrets_pkey PRIMARY KEY (name)
);

CREATE TABLE settings (
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT settings_pkey PRIMARY KEY (name)
);

CREATE TABLE signing_keys (
    kid         TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    secret_name TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);
CREATE INDEX signing_keys_created ON signing_keys (created_at, kid);

CREATE TABLE clients (
    client_id   TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    data        TEXT NOT NULL,
    CONSTRAINT clients_pkey PRIMARY KEY (client_id)
);
CREATE INDEX clients_created ON clients (created_at, client_id);

CREATE TABLE client_grants (
    id          TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    audience    TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT client_grants_pkey PRIMARY KEY (id),
    CONSTRAINT client_grants_client_fkey FOREIGN KEY (client_id) REFERENCES clients (client_id),
    CONSTRAINT client_grants_client_audience_key UNIQUE (client_id, audience)
);
CREATE INDEX client_grants_created ON client_grants (created_at, id);
CREATE INDEX client_grants_audience ON client_grants (audience);

CREATE TABLE users (
    user_id       TEXT NOT NULL,
    email         TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login    BIGINT,
    logins_count  BIGINT NOT NULL DEFAULT 0,
    data          TEXT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_created ON users (created_at, user_id);

CREATE TABLE logs (
    -- "C" collation: log ids are fixed-width digits and checkpoints compare them as text, byte by byte.
    log_id      TEXT COLLATE "C" NOT NULL,
    date        BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    user_id     TEXT,
    client_id   TEXT,
    data        TEXT NOT NULL,
    CONSTRAINT logs_pkey PRIMARY KEY (log_id)
);
CREATE INDEX logs_date ON logs (date, log_id);
CREATE INDEX logs_type ON logs (event_type);
CREATE INDEX logs_user ON logs (user_id);
