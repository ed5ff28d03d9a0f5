-- The reception decider's ledger: the outcome of every command it decided, re-published on redelivery.
CREATE SCHEMA IF NOT EXISTS decider_reception;
CREATE TABLE IF NOT EXISTS decider_reception.decisions (
    command_id   uuid PRIMARY KEY,
    command_type text NOT NULL,
    dataset_id   text NOT NULL,
    outcome_type text NOT NULL,
    outcome      jsonb NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_by_dataset ON decider_reception.decisions (dataset_id, decided_at);
