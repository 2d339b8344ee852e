-- Log streams (issue 15): a delivery order for log events that a stream's cursor follows, and the streams.
-- Mirrors the migration of the same number for the other backend.
--
-- Delivery order: `(tx, seq)`. SQLite has one writer at a time, so `seq` is assigned in the insert's own write
-- transaction (the trigger below: the largest `seq` plus one) and events become visible in `seq` order; `tx` is
-- always 0 here (PostgreSQL keeps the writing transaction's id in it, see its migration).
ALTER TABLE logs ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN seq BIGINT;
UPDATE logs SET seq = rowid;
CREATE INDEX logs_order ON logs (tx, seq);
CREATE TRIGGER logs_assign_seq AFTER INSERT ON logs FOR EACH ROW WHEN NEW.seq IS NULL
BEGIN
    -- `tx = 0` lets the largest `seq` be read off the end of `logs_order`.
    UPDATE logs SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM logs WHERE tx = 0) WHERE rowid = NEW.rowid;
END;

-- A stream: its settings document (`config`: name, type, filters, startFrom, the sink without its secrets, which
-- are sealed apart in `secrets`), its status, where it is in the log (`cursor_tx`, `cursor_seq`: the last event
-- handled), and the delivery state: the claim of the node sending for it, when to try again, failures in a row
-- and the last error.
CREATE TABLE log_streams (
    id               TEXT PRIMARY KEY NOT NULL,
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
    updated_at       BIGINT NOT NULL
);
CREATE INDEX log_streams_created ON log_streams (created_at, id);
