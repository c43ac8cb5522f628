-- statusgate SQLite schema, version 4: deliveries an operator lists, filters and
-- replays while the gateway serves (AdminService).

-- The sub-path under /webhooks/{source} a delivery was posted to ('' for that URL), so
-- a replay runs the adapter exactly as the original request did.
ALTER TABLE deliveries ADD COLUMN path TEXT NOT NULL DEFAULT '';

-- Listing is by (received_at, id), newest first or oldest first, paged by keyset: each
-- filter that is an equality carries that order after it, so a page is one index range
-- scan whatever the table's size. Several sources or verdicts are one such scan each,
-- merged (see store.delivery_sql). The (source, verdict) one also serves the offline
-- replay's "unmapped or rejected deliveries of source X since T", which version 1's
-- index did.
DROP INDEX deliveries_by_verdict;
CREATE INDEX deliveries_by_received ON deliveries (received_at, id);
CREATE INDEX deliveries_by_verdict_received ON deliveries (verdict, received_at, id);
CREATE INDEX deliveries_by_source_received ON deliveries (source, received_at, id);
CREATE INDEX deliveries_by_source_verdict_received
    ON deliveries (source, verdict, received_at, id);
