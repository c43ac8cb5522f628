-- statusgate SQLite schema, version 1: deliveries, events, statuses.
-- Timestamps are integer microseconds since the Unix epoch, UTC: they sort and compare
-- as plain integers and round-trip Python datetimes exactly.

-- One raw inbound webhook request, kept verbatim (also the replay source).
CREATE TABLE deliveries (
    id          TEXT    PRIMARY KEY,
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    verdict     TEXT    NOT NULL CHECK (verdict IN ('mapped', 'unmapped', 'rejected')),
    detail      TEXT    NOT NULL DEFAULT '',
    headers     TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    body        BLOB    NOT NULL
);
-- Replay and inspection: "unmapped deliveries of source X since T", oldest first.
CREATE INDEX deliveries_by_verdict ON deliveries (verdict, source, received_at);

-- One applied change. sequence is the rowid: gateway-wide, assigned by the single
-- writer in commit order, so it is contiguous.
CREATE TABLE events (
    sequence    INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    -- NULL for polls and reconciles; a replay points at the delivery it replayed.
    delivery_id TEXT    REFERENCES deliveries (id),
    data        BLOB    NOT NULL  -- serialized statusgate.v1.StatusEvent
);
CREATE INDEX events_by_name ON events (name, sequence);
CREATE INDEX events_by_delivery ON events (delivery_id) WHERE delivery_id IS NOT NULL;

-- The current snapshot of every subject, with the columns ListStatuses filters on.
CREATE TABLE statuses (
    name       TEXT    PRIMARY KEY,
    source     TEXT    NOT NULL,
    parent     TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    state      INTEGER NOT NULL,
    terminal   INTEGER NOT NULL CHECK (terminal IN (0, 1)),
    updated_at INTEGER NOT NULL,
    sequence   INTEGER NOT NULL REFERENCES events (sequence),
    data       BLOB    NOT NULL  -- serialized statusgate.v1.Status
);
-- Listing is ordered by name, so the equality filters carry name for keyset paging.
CREATE INDEX statuses_by_source ON statuses (source, name);
CREATE INDEX statuses_by_parent ON statuses (parent, name);
CREATE INDEX statuses_by_kind ON statuses (kind, name);
CREATE INDEX statuses_by_state ON statuses (state, name);
-- The reconciler: non-terminal subjects quiet since some time.
CREATE INDEX statuses_by_terminal ON statuses (terminal, updated_at);
CREATE INDEX statuses_by_updated_at ON statuses (updated_at);

-- One row the writer rewrites to prove, after a failed commit, that it can commit again
-- even when no webhook arrives (a store that is not ready receives no traffic).
CREATE TABLE writer_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL
);
