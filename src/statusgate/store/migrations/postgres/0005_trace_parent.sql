-- statusgate PostgreSQL schema, version 5: the W3C traceparent of the request that made
-- each event (StatusEvent.trace_parent, also inside data); the same as SQLite's
-- version 5. A column with a constant default is added without rewriting the table.
ALTER TABLE events ADD COLUMN trace_parent text COLLATE "C" NOT NULL DEFAULT '';
