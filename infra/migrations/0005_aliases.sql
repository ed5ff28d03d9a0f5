-- File aliases given by the reception decider: one file per alias on the node (DRS and htsget
-- resolve an object by accession or by alias). Claimed under a lock before the fact is published,
-- so that two deciders taking commands of two datasets at once cannot give one alias twice.
CREATE TABLE IF NOT EXISTS decider_reception.aliases (
    alias      text PRIMARY KEY,
    file_id    uuid NOT NULL,
    dataset_id text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
