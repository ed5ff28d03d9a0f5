-- Node-level facts that are not projections of the log.
CREATE TABLE IF NOT EXISTS node_info (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO node_info (key, value) VALUES ('created_at', now()::text) ON CONFLICT DO NOTHING;
