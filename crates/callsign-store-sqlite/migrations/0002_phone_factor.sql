-- The phone factor, SQLite flavour: MFA enrollments, mfa_tokens, challenges, the delivery outbox, rate-limit buckets,
-- the development provider's inbox and enrollment tickets. Mirrors the PostgreSQL migration of the same number.
-- `seq` (the rowid here, an identity column there) orders rows stored in the same millisecond as they were stored,
-- where listing order is visible: enrollments and the development inbox. Their ids are random, so `id` cannot.

CREATE TABLE enrollments (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    user_id           TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    status            TEXT NOT NULL,
    phone_number      TEXT,
    preferred_channel TEXT,
    name              TEXT,
    secret_hash       TEXT,
    created_at        BIGINT NOT NULL,
    enrolled_at       BIGINT,
    last_auth         BIGINT
);
-- A user's enrollments, oldest first.
CREATE INDEX enrollments_user ON enrollments (user_id, created_at, seq);

CREATE TABLE mfa_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    audience    TEXT,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE challenges (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    enrollment_id   TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    mfa_token_hash  TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT
);
CREATE INDEX challenges_enrollment ON challenges (enrollment_id);

-- The outbox. The payload (recipient and text) is sealed like a secret, and erased once the job is terminal.
CREATE TABLE delivery_jobs (
    id                TEXT PRIMARY KEY NOT NULL,
    channel           TEXT NOT NULL,
    user_id           TEXT,
    enrollment_id     TEXT,
    challenge_id      TEXT,
    provider          TEXT NOT NULL,
    key_id            TEXT,
    nonce             BLOB,
    ciphertext        BLOB,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    run_at            BIGINT NOT NULL,
    claimed_by        TEXT,
    claim_expires_at  BIGINT,
    last_error        TEXT,
    details           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    finished_at       BIGINT
);
CREATE INDEX delivery_jobs_due ON delivery_jobs (status, run_at);
CREATE INDEX delivery_jobs_created ON delivery_jobs (created_at, id);

-- Token buckets; a missing row is a full bucket.
CREATE TABLE buckets (
    key         TEXT PRIMARY KEY NOT NULL,
    tokens      INTEGER NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE dev_messages (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    to_number   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX dev_messages_to ON dev_messages (to_number, created_at, seq);
CREATE INDEX dev_messages_created ON dev_messages (created_at, seq);

CREATE TABLE enrollment_tickets (
    ticket_hash TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
