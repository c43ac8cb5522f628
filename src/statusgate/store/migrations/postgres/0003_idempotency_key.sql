-- statusgate PostgreSQL schema, version 3: a delivery's own id from its provider.

-- A provider that names its deliveries (a ReBIT AA's txnid) may send one again: the
-- same key with the same content is a duplicate, with other content a conflict. NULL
-- for providers without such ids.
ALTER TABLE deliveries ADD COLUMN idempotency_key text COLLATE "C";

-- Finding the delivery that claims a key (the first accepted one) of one source.
CREATE INDEX deliveries_by_idempotency_key ON deliveries (source, idempotency_key, received_at)
    WHERE idempotency_key IS NOT NULL;
