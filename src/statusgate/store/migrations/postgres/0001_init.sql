-- statusgate PostgreSQL schema, version 1: deliveries, events, statuses.
-- Names and ids are COLLATE "C": listing pages by name and name prefixes are byte
-- ranges, which must order exactly like SQLite's BINARY collation (code points), not
-- like the database's locale.

-- One raw inbound webhook request, kept verbatim (also the replay source).
CREATE TABLE deliveries (
    id          text COLLATE "C" PRIMARY KEY,
    source      text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    verdict     text NOT NULL CHECK (verdict IN ('mapped', 'unmapped', 'rejected')),
    detail      text NOT NULL DEFAULT '',
    -- A JSON object, ASCII-escaped by the writer: header values may hold what text and
    -- json columns refuse (NUL, undecodable bytes as surrogates) and must round-trip.
    headers     text NOT NULL DEFAULT '{}',
    body        bytea NOT NULL
);
-- Replay and inspection: "unmapped deliveries of source X since T", oldest first.
CREATE INDEX deliveries_by_verdict ON deliveries (verdict, source, received_at);
-- Keyset paging of list_deliveries without a verdict filter.
CREATE INDEX deliveries_by_received_at ON deliveries (received_at, id);

-- The one-row sequence counter. Every transaction that writes events first locks this
-- row (SELECT ... FOR UPDATE) and keeps the lock until it commits, so transactions that
-- write events commit one at a time, in sequence order, across all replicas: a reader
-- can never see sequence n + 1 committed while n is still in flight. A bigserial would
-- hand out numbers that commit out of order and leave readers guessing about gaps.
CREATE TABLE event_sequence (
    id    integer PRIMARY KEY CHECK (id = 1),
    value bigint  NOT NULL CHECK (value >= 0)
);
INSERT INTO event_sequence (id, value) VALUES (1, 0);

-- One applied change, with its gateway-wide sequence.
CREATE TABLE events (
    sequence    bigint PRIMARY KEY,
    event_id    text COLLATE "C" NOT NULL UNIQUE,
    name        text COLLATE "C" NOT NULL,
    -- NULL for polls and reconciles; a replay points at the delivery it replayed.
    delivery_id text COLLATE "C" REFERENCES deliveries (id),
    data        bytea NOT NULL  -- serialized statusgate.v1.StatusEvent
);
CREATE INDEX events_by_name ON events (name, sequence);
CREATE INDEX events_by_delivery ON events (delivery_id) WHERE delivery_id IS NOT NULL;

-- The current snapshot of every subject, with the columns ListStatuses filters on.
CREATE TABLE statuses (
    name       text COLLATE "C" PRIMARY KEY,
    source     text COLLATE "C" NOT NULL,
    parent     text COLLATE "C" NOT NULL,
    kind       integer NOT NULL,
    state      integer NOT NULL,
    terminal   boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    sequence   bigint NOT NULL REFERENCES events (sequence),
    data       bytea NOT NULL  -- serialized statusgate.v1.Status
);
-- Listing is ordered by name, so the equality filters carry name for keyset paging.
CREATE INDEX statuses_by_source ON statuses (source, name);
CREATE INDEX statuses_by_parent ON statuses (parent, name);
CREATE INDEX statuses_by_kind ON statuses (kind, name);
CREATE INDEX statuses_by_state ON statuses (state, name);
-- The reconciler: non-terminal subjects quiet since some time.
CREATE INDEX statuses_by_terminal ON statuses (terminal, updated_at);
CREATE INDEX statuses_by_updated_at ON statuses (updated_at);

-- One row a writer rewrites to prove, after a failed commit, that it can commit again
-- even when no webhook arrives (a store that is not ready receives no traffic).
CREATE TABLE writer_probe (
    id        integer PRIMARY KEY CHECK (id = 1),
    probed_at timestamptz NOT NULL
);
