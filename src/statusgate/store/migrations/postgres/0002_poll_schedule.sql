-- statusgate PostgreSQL schema, version 2: the reconciler's schedule,
-- the same table as SQLite's version 2.

-- One row per subject the reconciler has considered.
CREATE TABLE poll_schedule (
    name           text COLLATE "C" PRIMARY KEY REFERENCES statuses (name),
    source         text COLLATE "C" NOT NULL,
    -- Consecutive reconciler polls that did not change the subject (drives the backoff).
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Not polled again before this, unless the subject changes meanwhile.
    next_poll_at   timestamptz NOT NULL DEFAULT 'epoch',
    last_polled_at timestamptz,
    -- statuses.sequence when the last poll finished: a different one means the subject
    -- changed since (a webhook came), so its backoff starts over.
    seen_sequence  bigint NOT NULL DEFAULT 0,
    -- The lease: while lease_until is in the future, only lease_owner polls the subject.
    -- Replicas claim with SELECT ... FOR UPDATE SKIP LOCKED on these rows, never on
    -- statuses, so claiming neither waits for nor delays the ingest writers.
    lease_owner    text,
    lease_until    timestamptz,
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX poll_schedule_by_source ON poll_schedule (source);

-- Finding quiet, non-terminal subjects of one source.
CREATE INDEX statuses_by_source_quiet ON statuses (source, terminal, updated_at);
