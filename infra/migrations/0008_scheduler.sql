-- The scheduler's ledger: the outcomes of every task command it decided (a task's admission or refusal
-- with the audit events of its inputs; a cancel's acceptance or refusal), re-published unchanged on
-- redelivery.
CREATE SCHEMA IF NOT EXISTS decider_tasks;
CREATE TABLE IF NOT EXISTS decider_tasks.decisions (
    command_id   uuid PRIMARY KEY,
    command_type text NOT NULL,
    aggregate_id text NOT NULL,
    outcomes     jsonb NOT NULL CHECK (jsonb_typeof(outcomes) = 'array' AND jsonb_array_length(outcomes) > 0),
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_by_aggregate ON decider_tasks.decisions (aggregate_id, decided_at);
