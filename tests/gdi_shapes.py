"""The GDI metadata SHACL shapes (specs/gdi-metadata) and pySHACL over them, for the catalogue's tests.

The shapes graph is parsed once per session (about 40 ms) and validation of a catalogue takes a
few tens of milliseconds, so tests validate freely. ``Identifier.ttl`` uses ``foaf:`` without
declaring it (an upstream slip): the loader declares it before each file, changing nothing else.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyshacl
from rdflib import Graph, URIRef
from rdflib.namespace import SH

from genomebus.infra.catalogue import PREFIXES
from tests.data import REPO

SHAPES = REPO / "specs" / "gdi-metadata"
_FOAF = "@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n"


@functools.cache
def shapes() -> Graph:
    graph = Graph()
    for path in sorted(SHAPES.glob("*.ttl")):
        graph.parse(data=_FOAF + path.read_text(encoding="utf-8"), format="turtle")
    return graph


_NAMES = Graph(bind_namespaces="none")
for _prefix, _namespace in PREFIXES.items():
    _NAMES.bind(_prefix, _namespace, override=True, replace=True)


def curie(iri: URIRef) -> str:
    """``iri`` written with the catalogue's prefixes (``dct:creator``), whatever the graph it came from bound."""
    return _NAMES.namespace_manager.curie(iri, generate=False)


@dataclass(frozen=True)
class Violation:
    focus: str
    path: str | None
    """The property as a CURIE of the catalogue's prefixes (``dct:creator``)."""
    message: str


def violations(data: Graph) -> list[Violation]:
    """Every ``sh:Violation`` pySHACL finds in ``data`` against the GDI shapes."""
    conforms, report, _ = pyshacl.validate(data, shacl_graph=shapes())
    found = []
    for result in report.subjects(SH.resultSeverity, SH.Violation):
        path = report.value(result, SH.resultPath)
        found.append(Violation(str(report.value(result, SH.focusNode)),
                               curie(path) if isinstance(path, URIRef) else None,
                               str(report.value(result, SH.resultMessage))))
    assert conforms == (not found)
    return sorted(found, key=lambda v: (v.focus, v.path or "", v.message))


def violated_properties(data: Graph, focus: str | None = None) -> set[str | None]:
    """The properties the violations are about (of ``focus`` only, if given)."""
    return {v.path for v in violations(data) if focus is None or v.focus == focus}
