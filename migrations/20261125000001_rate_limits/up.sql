-- Per-client request counts in fixed one-minute windows, shared by every instance.
-- UNLOGGED: counts are worth nothing after a crash, and skipping the WAL keeps the one
-- write per request cheap.
CREATE UNLOGGED TABLE rate_limit_windows (
    client_id    uuid        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL,
    PRIMARY KEY (client_id, window_start)
);
