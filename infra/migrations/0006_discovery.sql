-- The discovery index: written only by the indexer (consumers/indexer.py), read by the Beacon and the
-- catalogue. Coordinates are Beacon v2's: 0-based, half-open ("interbase"); a VCF POS p is start p-1.
CREATE SCHEMA IF NOT EXISTS discovery;

-- Every dataset the indexer saw released. Only state 'indexed' is served by discovery.
CREATE TABLE IF NOT EXISTS discovery.datasets (
    dataset_key        integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    dataset_id         text PRIMARY KEY,
    release_event_id   uuid NOT NULL,
    state              text NOT NULL CHECK (state IN ('indexing', 'indexed', 'unindexed', 'failed')),
    access_rights      text NOT NULL,                -- controlled | restricted | public (from the description)
    assembly           text,                         -- as the variant files name it (GRCh37, GRCh38, ...)
    variants           bigint NOT NULL DEFAULT 0,
    samples            integer NOT NULL DEFAULT 0,
    individuals        integer NOT NULL DEFAULT 0,
    biosamples         integer NOT NULL DEFAULT 0,
    max_variant_length integer NOT NULL DEFAULT 0,   -- longest (end - start): range queries look back this far
    description        jsonb NOT NULL,               -- the DatasetDescription as released (or last updated)
    indexed_at         timestamptz,
    unindexed_at       timestamptz,
    unindexed_reason   text
);

-- One row per (dataset, site, alternate allele): multi-allelic sites are split. Partitioned by dataset:
-- a dataset's partition (discovery.variants_<dataset_key>) is loaded with COPY into its own table,
-- indexed, analysed, then attached; withdrawing a dataset detaches and drops it (infra/discovery/index.py).
CREATE TABLE IF NOT EXISTS discovery.variants (
    dataset_key     integer NOT NULL,
    contig          text COLLATE "C" NOT NULL,  -- normalised: 1..22, X, Y, MT (no "chr"); byte order is enough
    start           integer NOT NULL,   -- 0-based, inclusive
    "end"           integer NOT NULL,   -- 0-based, exclusive: start + length of ref (or END of a symbolic allele)
    ref             text NOT NULL,
    alt             text NOT NULL,      -- one allele; symbolic ones as written (<DEL>, <DUP>, ...)
    variant_type    text NOT NULL,      -- SNP, MNP, INS, DEL, DUP, INV, CNV, BND, SV
    allele_count    integer NOT NULL,   -- AC: copies of alt among the called genotypes
    allele_number   integer NOT NULL,   -- AN: called alleles at the site
    carriers        integer NOT NULL,   -- samples with at least one copy of alt
    carrier_samples integer[] NOT NULL  -- their discovery.samples.sample_idx: for record-level answers only
) PARTITION BY LIST (dataset_key);
CREATE INDEX IF NOT EXISTS variants_by_position ON discovery.variants (contig, start);

-- Concatenates arrays across rows: the carriers of one allele found in several files of a dataset
-- (each file's samples have their own indexes, so the union is a concatenation).
CREATE OR REPLACE AGGREGATE discovery.concat_arrays(anycompatiblearray) (
    SFUNC = array_cat, STYPE = anycompatiblearray, INITCOND = '{}'
);

-- The genotyped samples (VCF columns) and who they are: a biosample or individual of the metadata
-- when the column name matches one, else only the column name.
CREATE TABLE IF NOT EXISTS discovery.samples (
    dataset_key    integer NOT NULL,
    sample_idx     integer NOT NULL,
    file_accession text NOT NULL,
    sample_name    text NOT NULL,
    individual_id  text,
    biosample_id   text,
    PRIMARY KEY (dataset_key, sample_idx)
);

CREATE TABLE IF NOT EXISTS discovery.individuals (
    dataset_key   integer NOT NULL,
    individual_id text NOT NULL,
    sex           text NOT NULL,           -- NCIT CURIE: NCIT:C16576 female, NCIT:C20197 male, ...
    phenotypes    text[] NOT NULL,         -- HPO CURIEs as described
    diseases      text[] NOT NULL,         -- CURIEs as described (MONDO, OMIM, ORPHA, ICD10, ...)
    PRIMARY KEY (dataset_key, individual_id)
);
CREATE INDEX IF NOT EXISTS individuals_by_phenotype ON discovery.individuals USING gin (phenotypes);
CREATE INDEX IF NOT EXISTS individuals_by_disease ON discovery.individuals USING gin (diseases);

CREATE TABLE IF NOT EXISTS discovery.biosamples (
    dataset_key   integer NOT NULL,
    biosample_id  text NOT NULL,
    individual_id text,
    sample_type   text,                    -- CURIE (UBERON, OBI, NCIT, ...)
    collected     text,                    -- ISO 8601 date or year, as described
    PRIMARY KEY (dataset_key, biosample_id)
);

-- The archived files, for the runs and analyses entry types.
CREATE TABLE IF NOT EXISTS discovery.files (
    dataset_key  integer NOT NULL,
    accession    text NOT NULL,
    drs_id       text NOT NULL,
    format       text NOT NULL,            -- BAM, CRAM, VCF, BCF, FASTQ
    size         bigint NOT NULL,
    sample_names text[] NOT NULL,          -- read groups' SM (BAM/CRAM) or VCF columns
    metrics      jsonb NOT NULL,           -- QC metrics as published
    archived_at  timestamptz,
    PRIMARY KEY (dataset_key, accession)
);

-- The filtering terms the node's data holds (what /filtering_terms lists), with labels.
CREATE TABLE IF NOT EXISTS discovery.terms (
    dataset_key integer NOT NULL,
    term        text NOT NULL,             -- CURIE, or the id of an alphanumeric / custom term
    label       text,
    kind        text NOT NULL CHECK (kind IN ('ontology', 'alphanumeric', 'custom')),
    scope       text NOT NULL,             -- individuals, biosamples, g_variants, datasets, runs, analyses
    PRIMARY KEY (dataset_key, term, scope)
);
