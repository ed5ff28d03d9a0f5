-- File accessions handed out in order by the reception decider: GDI-<node>-FILE-<number, 8 digits>.
CREATE TABLE IF NOT EXISTS decider_reception.accessions (
    file_id     uuid PRIMARY KEY,
    number      bigint NOT NULL UNIQUE CHECK (number > 0),
    assigned_at timestamptz NOT NULL DEFAULT now()
);
