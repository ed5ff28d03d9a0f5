-- The airlock's ledger: the outcomes of every output command it decided (an approval, and with the last
-- one the release; a reject; a refusal), re-published unchanged on redelivery.
CREATE SCHEMA IF NOT EXISTS decider_airlock;
CREATE TABLE IF NOT EXISTS decider_airlock.decisions (
    command_id   uuid PRIMARY KEY,
    command_type text NOT NULL,
    aggregate_id text NOT NULL,
    outcomes     jsonb NOT NULL CHECK (jsonb_typeof(outcomes) = 'array' AND jsonb_array_length(outcomes) > 0),
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_by_aggregate ON decider_airlock.decisions (aggregate_id, decided_at);
