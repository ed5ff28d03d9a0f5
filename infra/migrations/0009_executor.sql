-- The executor's runs: one per admitted task, queued -> running (held by one executor process under a
-- lease it renews) -> ended. A run whose lease lapses is ended as SYSTEM_ERROR and never run again.
CREATE SCHEMA IF NOT EXISTS worker_executor;
CREATE TABLE IF NOT EXISTS worker_executor.runs (
    task_id          text PRIMARY KEY,
    attempt          integer NOT NULL,
    state            text NOT NULL CHECK (state IN ('queued', 'running', 'ended')),
    accepted         jsonb NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false,
    owner            text,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS runs_queued ON worker_executor.runs (created_at) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS runs_running ON worker_executor.runs (lease_until) WHERE state = 'running';
