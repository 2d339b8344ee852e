-- Log streams (issue 15): a delivery order for log events that a stream's cursor follows, and the streams.
-- Mirrors the migration of the same number for the other backend.
--
-- Delivery order: `(tx, seq)`, where `tx` is the id of the transaction that wrote the event (`xid8`, 64 bits,
-- never wraps) and `seq` a sequence. A `bigserial` alone is not enough: numbers are taken when a transaction
-- inserts, not when it commits, so a reader could see 6 before a slower transaction commits 5 and step over it.
-- Readers only take events whose `tx` is below the oldest transaction still running
-- (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below it has ended, and any event that commits
-- later has a larger `tx` than everything read so far, so a cursor on `(tx, seq)` never skips one.
ALTER TABLE logs ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE logs ADD COLUMN seq BIGSERIAL;
CREATE INDEX logs_order ON logs (tx, seq);

-- A stream: its settings document (`config`: name, type, filters, startFrom, the sink without its secrets, which
-- are sealed apart in `secrets`), its status, where it is in the log (`cursor_tx`, `cursor_seq`: the last event
-- handled), and the delivery state: the claim of the node sending for it, when to try again, failures in a row
-- and the last error.
CREATE TABLE log_streams (
    id               TEXT NOT NULL,
    config           TEXT NOT NULL,
    status           TEXT NOT NULL,
    cursor_tx        BIGINT NOT NULL,
    cursor_seq       BIGINT NOT NULL,
    run_at           BIGINT NOT NULL,
    claimed_by       TEXT,
    claim_expires_at BIGINT,
    failures         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_error_at    BIGINT,
    delivered        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT log_streams_pkey PRIMARY KEY (id)
);
CREATE INDEX log_streams_created ON log_streams (created_at, id);
