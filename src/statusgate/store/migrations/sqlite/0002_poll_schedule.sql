-- statusgate SQLite schema, version 2: the reconciler's schedule.
-- Timestamps are integer microseconds since the Unix epoch, UTC, as in version 1.

-- One row per subject the reconciler has claimed at least once.
CREATE TABLE poll_schedule (
    name           TEXT    PRIMARY KEY REFERENCES statuses (name),
    source         TEXT    NOT NULL,
    -- Consecutive reconciler polls that did not change the subject (drives the backoff).
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Not polled again before this, unless the subject changes meanwhile.
    next_poll_at   INTEGER NOT NULL DEFAULT 0,
    last_polled_at INTEGER,
    -- statuses.sequence when the last poll finished: a different one means the subject
    -- changed since (a webhook came), so its backoff starts over.
    seen_sequence  INTEGER NOT NULL DEFAULT 0,
    -- The lease: while lease_until is in the future, only lease_owner polls the subject.
    lease_owner    TEXT,
    lease_until    INTEGER,
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);

-- Finding quiet, non-terminal subjects of one source.
CREATE INDEX statuses_by_source_quiet ON statuses (source, terminal, updated_at);
