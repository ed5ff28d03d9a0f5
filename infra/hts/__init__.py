"""Cutting a stored genomic file by region, for the gateway's htsget 1.3 endpoint: which bytes answer a query.

The gateway holds a decrypted, randomly readable object (``Plaintext``) and its index's bytes; this
package says which byte ranges of it, concatenated, are the answer (``Block`` list): the header,
the BGZF blocks or CRAM containers the index names for the regions, the EOF marker. It serves
each format as stored (BAM, CRAM, VCF, BCF); it never transcodes, and reads only the header, the
index and a few block headers, never the whole file.

- ``model``: the query and answer values, ``HtsError`` with htsget's error names.
- ``bgzf``: BGZF blocks and virtual offsets.
- ``indexes``: BAI, CSI, TBI and CRAI parsing, and which chunks hold a region.
- ``headers``: where each format's header ends, and its reference names and lengths.
- ``plan``: the decisions (``open_file``, ``HtsFile.plan``, ``plan``); its docstring lists the
  choices made where htsget leaves room (unknown reference, start past the end, no index).
"""

from genomebus.infra.hts.model import FORMATS, Block, HtsError, MalformedFile, Plaintext, Query, Region
from genomebus.infra.hts.plan import HtsFile, open_file, plan

__all__ = ["FORMATS", "Block", "HtsError", "HtsFile", "MalformedFile", "Plaintext", "Query", "Region", "open_file", "plan"]
