-- statusgate SQLite schema, version 5: the W3C traceparent of the request that made
-- each event (StatusEvent.trace_parent, also inside data), so that the events of one
-- trace can be found with SQL. '' for the events written before, and for those made
-- without a trace.
ALTER TABLE events ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
