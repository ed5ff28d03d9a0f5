-- The tool registry's ledger: the outcomes of every tool command it decided, re-published unchanged on
-- redelivery.
CREATE SCHEMA IF NOT EXISTS decider_tools;
CREATE TABLE IF NOT EXISTS decider_tools.decisions (
    command_id   uuid PRIMARY KEY,
    command_type text NOT NULL,
    aggregate_id text NOT NULL,
    outcomes     jsonb NOT NULL CHECK (jsonb_typeof(outcomes) = 'array' AND jsonb_array_length(outcomes) > 0),
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_by_aggregate ON decider_tools.decisions (aggregate_id, decided_at);
