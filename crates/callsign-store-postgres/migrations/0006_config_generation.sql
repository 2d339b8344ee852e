-- One number that every write to configuration (settings, applications, client grants) raises in the same
-- transaction (SettingStore::config_generation). Nodes poll it to know when their cached configuration is stale.
-- Mirrors the SQLite migration of the same number.
CREATE TABLE config_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO config_generation (id, n) VALUES (1, 0);
