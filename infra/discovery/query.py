"""Beacon v2 queries over the discovery index: what the Beacon router asks, answered per dataset.

The router turns a request into a ``VariantQuery`` (``variant_query``) and ``Filter``s
(``filters_from_request``), then calls::

    async def search(pool, entry_type, *, variant=None, filters=(), dataset_ids=None, entry_id=None,
                     linked=None, records_for=(), skip=0, limit=10) -> SearchResult

``SearchResult.matches`` holds one ``DatasetMatch`` per indexed dataset in scope (count 0
included), ordered by dataset id, with the exact count of matching entries and, only for the
datasets named in ``records_for``, the page ``[skip, skip + limit)`` of records in the Beacon v2
default model. ``SearchResult.warnings`` lists what the query asked and this node could not
answer as asked (``QueryWarning``: an unknown filter, scope or term, a similarity other than
exact): Beacon reports unsupported filters rather than silently ignoring them. An unknown filter
matches nothing — its condition cannot be shown true of any entry — so every count is 0 and the
warning says why. A request this node refuses (a malformed or too wide query) raises
``QueryError`` (→ 400).

Variant queries (0-based, half-open coordinates; ``referenceName`` as ``alleles.normalise_contig``):

- sequence (``start`` only): variants starting at ``start`` with ``alternateBases`` (``N`` matches
  any base) and, if given, ``referenceBases``; an empty ``referenceBases`` (insertion) or
  ``alternateBases`` (deletion) is the trimmed form and matches the VCF-anchored allele.
- range (one ``start``, one ``end``): variants overlapping ``[start, end)``, at most
  ``beacon_range_max_bp`` wide. The scan over the ``(contig, start)`` index starts
  ``max_variant_length`` before ``start``: no variant of the dataset is longer.
- bracket (two of each): ``start[0] <= start <= start[1]`` and ``end[0] <= end <= end[1]``.
- ``genomicAlleleShortForm``: genomic HGVS (``hgvs.parse``), matched against the VCF-anchored
  allele, also when a multi-allelic record pads it with shared bases.
- ``variantType`` (``INDEL`` = INS or DEL, ``SNV`` = SNP), ``variantMinLength``/``variantMaxLength``
  (length: deleted or inserted bases of an indel, ``end - start`` of a symbolic allele, the bases
  of a SNP/MNP), ``assemblyId`` (a dataset whose files name another assembly does not match;
  one that names none does). ``geneId``, ``aminoacidChange`` and ``mateName`` are refused.

Filters (all ANDed):

- ontology terms: NCIT sex terms (``ontology.SEX_TERMS``) → individuals' sex; HPO → individuals'
  phenotypes or diseases, with descendant terms unless ``includeDescendantTerms`` is false; DUO →
  the datasets' data use (over DUO's tree); any other CURIE the index holds (``discovery.terms``)
  → individuals' diseases/phenotypes or biosamples' sample type, matching only itself.
- alphanumeric ``{id, operator, value}``, operators ``= < > ! <= >=``, ``%`` or ``*`` wildcards
  with ``=`` and ``!`` on text: see ``FIELDS`` — individuals ``id``, ``sex``; biosamples ``id``,
  ``individualId``, ``collectionDate``, ``sampleOriginType``; g_variants ``id``,
  ``alleleFrequency``, ``alleleCount``, ``alleleNumber``, ``variantType``, ``referenceName``; runs
  and analyses ``id``; datasets ``id``, ``name``, ``accessRights``. An ``id`` without a scope is
  the queried entry type's. (No ``carriers`` filter: a carrier count of 1 singles a person out.)
- custom terms: ``keyword:<keyword>`` — datasets described with that keyword (case-insensitive).

A filter applies to the entry type that holds its field (or its ``scope``); the queried entries
are those linked to a matching one: variants carried by a sample of a matching individual or
biosample (``carrier_samples``), individuals and biosamples carrying a matching variant, runs and
analyses of matching samples, datasets holding a match. ``entry_id`` and ``linked`` are the same
conditions on ids (``linked=("individuals", "I1")`` for ``/individuals/I1/g_variants``).

A variant's id (``variantInternalId``) is ``<contig>-<VCF POS>-<REF>-<ALT>`` (1-based POS, as
gnomAD writes them), the same in every dataset that holds the allele.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from genomebus.infra.discovery import hgvs, ontology
from genomebus.infra.discovery.alleles import VARIANT_TYPES, normalise_contig, query_types
from genomebus.schemas import duo

ENTRY_TYPES = ("g_variants", "individuals", "biosamples", "runs", "analyses", "datasets")
ENTRY_TYPE_IDS = {"g_variants": "genomicVariant", "individuals": "individual", "biosamples": "biosample",
                  "runs": "run", "analyses": "analysis", "datasets": "dataset"}
"""The entry type ids of the default model's configuration, as ``/filtering_terms`` names scopes."""

_SCOPES = {**{e: e for e in ENTRY_TYPES}, **{v: k for k, v in ENTRY_TYPE_IDS.items()},
           "genomicVariation": "g_variants", "genomicVariations": "g_variants", "g_variant": "g_variants",
           "genomicVariants": "g_variants"}
RUN_FORMATS = ("BAM", "CRAM", "FASTQ")
ANALYSIS_FORMATS = ("VCF", "BCF")
OPERATORS = ("=", "<", ">", "!", "<=", ">=")
QUERY_VARIANT_TYPES = VARIANT_TYPES + ("INDEL", "SNV")
_BASES = re.compile(r"^[ACGTN]*$")
_UNKNOWN = ontology.Term("NCIT:C17998", "unknown")


class QueryError(ValueError):
    """A request this node refuses; ``code`` is machine-readable, ``message`` says what to send."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QueryWarning:
    """Something asked that this node could not answer as asked (the query still ran)."""

    code: str          # unknown_filter | unknown_scope | unknown_term | similarity_not_supported
    message: str
    filter_id: str | None = None


@dataclass(frozen=True)
class VariantQuery:
    reference_name: str | None = None
    assembly_id: str | None = None
    start: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    reference_bases: str | None = None
    alternate_bases: str | None = None
    variant_type: str | None = None
    variant_min_length: int | None = None
    variant_max_length: int | None = None
    gene_id: str | None = None
    genomic_allele_short_form: str | None = None
    aminoacid_change: str | None = None

    def kind(self) -> Literal["sequence", "range", "bracket", "hgvs", "none"]:
        if self.genomic_allele_short_form:
            return "hgvs"
        if len(self.start) == 2:
            return "bracket"
        if len(self.start) == 1:
            return "range" if self.end else "sequence"
        return "none"


@dataclass(frozen=True)
class Filter:
    id: str
    operator: str = "="
    value: str | None = None
    include_descendant_terms: bool = True
    similarity: str = "exact"
    scope: str | None = None


@dataclass
class DatasetMatch:
    dataset_id: str
    access_rights: str
    count: int                                   # exact count of matching entries
    records: list[dict[str, Any]] = field(default_factory=list)  # only for datasets in records_for


@dataclass
class SearchResult:
    matches: list[DatasetMatch]
    warnings: list[QueryWarning] = field(default_factory=list)


@dataclass(frozen=True)
class IndexedDataset:
    """A dataset discovery serves, with its counts and its Beacon ``dataset`` record."""

    dataset_id: str
    access_rights: str
    assembly: str | None
    variants: int
    samples: int
    individuals: int
    biosamples: int
    record: dict[str, Any]


# -- requests → queries ----------------------------------------------------------------------------

_UNSUPPORTED = {
    "geneId": "geneId is not supported: this node holds no gene coordinates (see /configuration)",
    "aminoacidChange": "aminoacidChange is not supported: this node holds no variant annotations",
    "mateName": "mateName is not supported: breakends are matched by their own position only",
}
_VARIANT_PARAMS = ("referenceName", "start", "end", "referenceBases", "alternateBases", "variantType",
                   "variantMinLength", "variantMaxLength", "assemblyId", "genomicAlleleShortForm", *_UNSUPPORTED)


def variant_query(params: Mapping[str, Any], *, max_range_bp: int) -> VariantQuery | None:
    """Beacon ``requestParameters`` (camelCase; lists or GET's comma-separated strings) → a query.

    None when no variant parameter is present; ``QueryError`` for one this node refuses.
    """
    given = {k: params[k] for k in _VARIANT_PARAMS if k in params and params[k] is not None
             and (params[k] != "" or k in ("referenceBases", "alternateBases"))}
    if not given:
        return None
    for name, why in _UNSUPPORTED.items():
        if name in given:
            raise QueryError("unsupported_parameter", why)
    start = _coordinates("start", given.get("start"))
    end = _coordinates("end", given.get("end"))
    reference = given.get("referenceName")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise QueryError("invalid_reference_name", "referenceName is a sequence name such as 21, chr21 or "
                                                   "NC_000021.9")
    short_form = given.get("genomicAlleleShortForm")
    if short_form is not None:
        if not isinstance(short_form, str):
            raise QueryError("invalid_hgvs", "genomicAlleleShortForm is a string such as NC_000017.11:g.43045703G>A")
        if start or end or reference is not None or "referenceBases" in given or "alternateBases" in given:
            raise QueryError("conflicting_parameters", "genomicAlleleShortForm names the allele and its place: send "
                                                       "it without referenceName, start, end or bases")
        try:
            hgvs.parse(short_form)
        except hgvs.HgvsError as error:
            raise QueryError("invalid_hgvs", str(error)) from None
    query = VariantQuery(
        reference_name=normalise_contig(reference.strip().removeprefix("refseq:")) if reference else None,
        assembly_id=_text("assemblyId", given.get("assemblyId")),
        start=start, end=end,
        reference_bases=_bases("referenceBases", given.get("referenceBases")),
        alternate_bases=_bases("alternateBases", given.get("alternateBases")),
        variant_type=_variant_type(given.get("variantType")),
        variant_min_length=_length("variantMinLength", given.get("variantMinLength")),
        variant_max_length=_length("variantMaxLength", given.get("variantMaxLength")),
        genomic_allele_short_form=short_form.strip() if short_form else None,
    )
    _check_shape(query, max_range_bp)
    return query


def _check_shape(query: VariantQuery, max_range_bp: int) -> None:
    start, end = query.start, query.end
    if start and query.reference_name is None:
        raise QueryError("missing_reference_name", "start needs referenceName (the sequence it is on)")
    if end and not start:
        raise QueryError("invalid_coordinates", "end needs start")
    if len(start) != len(end) and not (len(start) == 1 and not end):
        raise QueryError("invalid_coordinates", "send one start (sequence query), one start and one end (range "
                                                "query) or two of each (bracket query)")
    kind = query.kind()
    if kind == "sequence" and query.alternate_bases is None and query.variant_type is None:
        raise QueryError("missing_alternate_bases", "a sequence query (start without end) needs alternateBases "
                                                    "or variantType; send an end for a range query")
    if kind == "sequence" and query.reference_bases == "" and query.alternate_bases == "":
        raise QueryError("invalid_bases", "referenceBases and alternateBases cannot both be empty")
    if kind == "range":
        if end[0] <= start[0]:
            raise QueryError("invalid_coordinates", f"end ({end[0]}) must be greater than start ({start[0]}): "
                                                    "coordinates are 0-based, end exclusive")
        if end[0] - start[0] > max_range_bp:
            raise QueryError("range_too_wide", f"the range is {end[0] - start[0]} bases wide; this node answers "
                                               f"ranges of at most {max_range_bp}")
    if kind == "bracket":
        if start[1] < start[0] or end[1] < end[0] or end[1] < start[0]:
            raise QueryError("invalid_coordinates", "a bracket query sends start=[min, max] and end=[min, max]")
        if start[1] - start[0] > max_range_bp:
            raise QueryError("range_too_wide", f"the start bracket is {start[1] - start[0]} bases wide; this node "
                                               f"answers ranges of at most {max_range_bp}")
    low, high = query.variant_min_length, query.variant_max_length
    if low is not None and high is not None and low > high:
        raise QueryError("invalid_length", f"variantMinLength ({low}) is greater than variantMaxLength ({high})")


def _coordinates(name: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    numbers = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise QueryError("invalid_coordinates", f"{name} holds integers (0-based), not {item!r}")
        try:
            number = int(item)
        except ValueError:
            raise QueryError("invalid_coordinates", f"{name} holds integers (0-based), not {item!r}") from None
        if number < 0:
            raise QueryError("invalid_coordinates", f"{name} cannot be negative ({number})")
        numbers.append(number)
    if not 1 <= len(numbers) <= 2:
        raise QueryError("invalid_coordinates", f"{name} holds one or two positions")
    return tuple(numbers)


def _bases(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _BASES.match(value.upper()):
        raise QueryError("invalid_bases", f"{name} is a sequence of A, C, G, T or N (any base), not {value!r}")
    return value.upper()


def _variant_type(value: Any) -> str | None:
    if value is None:
        return None
    wanted = value.strip().upper() if isinstance(value, str) else None
    if wanted not in QUERY_VARIANT_TYPES:
        raise QueryError("invalid_variant_type", f"variantType is one of {', '.join(QUERY_VARIANT_TYPES)}, "
                                                 f"not {value!r}")
    return wanted


def _length(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise QueryError("invalid_length", f"{name} is a whole number of bases, not {value!r}") from None
    if isinstance(value, bool) or number < 0:
        raise QueryError("invalid_length", f"{name} is a whole number of bases, not {value!r}")
    return number


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryError("invalid_request_parameter", f"{name} is a string")
    return value.strip() or None


_GET_FILTER = re.compile(r"^(?P<id>[^<>=!]+?):?(?P<op><=|>=|<|>|=|!)(?P<value>.*)$")


def filters_from_request(value: Any) -> tuple[Filter, ...]:
    """Beacon ``filters``: POST's list of filter objects (or ids), or GET's comma-separated ids.

    In GET, ``alleleFrequency:<0.01`` (or ``alleleFrequency<0.01``) is an alphanumeric filter;
    anything without an operator is an ontology or custom term.
    """
    if value is None or value == "":
        return ()
    items: list[Any] = value.split(",") if isinstance(value, str) else list(value) if isinstance(
        value, list | tuple) else [value]
    found = []
    for item in items:
        if isinstance(item, str):
            text = item.strip()
            if not text:
                continue
            parsed = _GET_FILTER.match(text)
            if parsed and not ontology.CURIE.match(text):
                found.append(Filter(id=parsed["id"].strip(), operator=parsed["op"], value=parsed["value"]))
            else:
                found.append(Filter(id=text))
        elif isinstance(item, Mapping):
            found.append(_filter_object(item))
        else:
            raise QueryError("invalid_filter", f"a filter is an object with an id (or, in GET, a term), not {item!r}")
    return tuple(found)


def _filter_object(item: Mapping[str, Any]) -> Filter:
    ident = item.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise QueryError("invalid_filter", "every filter has an id (a term, a field or a custom term)")
    operator = item.get("operator", "=")
    if operator not in OPERATORS:
        raise QueryError("invalid_filter", f"filter {ident!r}: the operator is one of {' '.join(OPERATORS)}, "
                                           f"not {operator!r}")
    value = item.get("value")
    if value is not None and not isinstance(value, str | int | float) or isinstance(value, bool):
        raise QueryError("invalid_filter", f"filter {ident!r}: the value is a string or a number")
    descendants = item.get("includeDescendantTerms", True)
    if not isinstance(descendants, bool):
        raise QueryError("invalid_filter", f"filter {ident!r}: includeDescendantTerms is true or false")
    similarity = item.get("similarity", "exact")
    if similarity not in ("exact", "high", "medium", "low"):
        raise QueryError("invalid_filter", f"filter {ident!r}: similarity is exact, high, medium or low")
    scope = item.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise QueryError("invalid_filter", f"filter {ident!r}: the scope is an entry type such as individuals")
    return Filter(id=ident.strip(), operator=operator, value=None if value is None else str(value),
                  include_descendant_terms=descendants, similarity=similarity, scope=scope)


# -- filters → conditions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AlphanumericField:
    entity: str
    id: str
    column: str   # SQL over the entity's alias (v, i, b, f, d)
    kind: Literal["number", "text", "sex", "variant_type", "contig"]
    label: str


FIELDS: tuple[AlphanumericField, ...] = (
    AlphanumericField("individuals", "id", "i.individual_id", "text", "individual id"),
    AlphanumericField("individuals", "sex", "i.sex", "sex", "sex: female, male, other, unknown (or its NCIT id)"),
    AlphanumericField("biosamples", "id", "b.biosample_id", "text", "biosample id"),
    AlphanumericField("biosamples", "individualId", "b.individual_id", "text", "the individual sampled"),
    AlphanumericField("biosamples", "collectionDate", "b.collected", "text", "collection date (ISO 8601)"),
    AlphanumericField("biosamples", "sampleOriginType", "b.sample_type", "text", "sample type (a CURIE)"),
    AlphanumericField("g_variants", "id", "", "text", "variant id: <contig>-<VCF POS>-<REF>-<ALT>"),
    AlphanumericField("g_variants", "alleleFrequency",
                      "(v.allele_count::float8 / NULLIF(v.allele_number, 0))", "number", "allele frequency"),
    AlphanumericField("g_variants", "alleleCount", "v.allele_count", "number", "copies of the allele (AC)"),
    AlphanumericField("g_variants", "alleleNumber", "v.allele_number", "number", "called alleles (AN)"),
    AlphanumericField("g_variants", "variantType", "v.variant_type", "variant_type", "variant type"),
    AlphanumericField("g_variants", "referenceName", "v.contig", "contig", "reference name"),
    AlphanumericField("runs", "id", "f.accession", "text", "run (file) accession"),
    AlphanumericField("analyses", "id", "f.accession", "text", "analysis (file) accession"),
    AlphanumericField("datasets", "id", "d.dataset_id", "text", "dataset id"),
    AlphanumericField("datasets", "name", "(d.description->>'title')", "text", "dataset title"),
    AlphanumericField("datasets", "accessRights", "d.access_rights", "text", "controlled, restricted or public"),
)
_FIELDS = {(f.entity, f.id): f for f in FIELDS}
_FIELD_HOMES: dict[str, list[str]] = {}
for _f in FIELDS:
    _FIELD_HOMES.setdefault(_f.id, []).append(_f.entity)
KEYWORD_PREFIX = "keyword:"


class _Sql:
    """The parameters of one search. Conditions name them ``@n@``; ``bind`` numbers those a statement
    uses as asyncpg's ``$1..$k`` (a parameter PostgreSQL sees unused has no type, and is refused)."""

    _TOKEN = re.compile(r"@(\d+)@")

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"@{len(self.values) - 1}@{'::' + cast if cast else ''}"

    def bind(self, text: str) -> tuple[str, list[Any]]:
        numbers: dict[int, int] = {}
        values: list[Any] = []

        def number(match: re.Match[str]) -> str:
            index = int(match[1])
            if index not in numbers:
                values.append(self.values[index])
                numbers[index] = len(values)
            return f"${numbers[index]}"

        return self._TOKEN.sub(number, text), values


@dataclass
class _Plan:
    """The conditions of one search, per entity (SQL over aliases v, i, b, f, d), and its warnings."""

    sql: _Sql
    conds: dict[str, list[str]] = field(default_factory=lambda: {e: [] for e in ENTRY_TYPES})
    warnings: list[QueryWarning] = field(default_factory=list)
    impossible: bool = False

    def unknown(self, code: str, message: str, filter_id: str | None) -> None:
        self.warnings.append(QueryWarning(code, message, filter_id))
        self.impossible = True


def _scope_entity(scope: str | None) -> str | None:
    return None if scope is None else _SCOPES.get(scope.strip())


async def _plan(conn: asyncpg.Connection, entry_type: str, variant: VariantQuery | None,
                filters: Sequence[Filter], entry_id: str | None,
                linked: tuple[str, str] | None) -> _Plan:
    plan = _Plan(_Sql())
    if variant is not None:
        _variant_conditions(plan, variant)
    if entry_id is not None:
        _id_condition(plan, entry_type, entry_id)
    if linked is not None:
        if linked[0] not in ENTRY_TYPES:
            raise QueryError("invalid_entry_type", f"no entry type {linked[0]!r}")
        _id_condition(plan, linked[0], linked[1])
    terms = [f for f in filters if f.value is None and ontology.CURIE.match(f.id)
             and not f.id.startswith(KEYWORD_PREFIX)]
    if any(ontology.is_hpo(f.id) for f in terms):
        await asyncio.to_thread(ontology.Hpo.shared)
    others = [f.id for f in terms if not (ontology.is_hpo(f.id) or ontology.is_sex_term(f.id)
                                          or f.id.startswith("DUO:"))]
    held = await _held_terms(conn, others) if others else {}
    for item in filters:
        _filter_condition(plan, entry_type, item, held)
    return plan


async def _held_terms(conn: asyncpg.Connection, terms: list[str]) -> dict[str, set[str]]:
    """Where the index holds each term: term → the entry types whose entries carry it."""
    rows = await conn.fetch(
        "SELECT DISTINCT t.term, t.scope FROM discovery.terms t JOIN discovery.datasets d USING (dataset_key) "
        "WHERE d.state = 'indexed' AND t.kind = 'ontology' AND t.term = ANY($1::text[])", terms)
    held: dict[str, set[str]] = {}
    for row in rows:
        entity = _scope_entity(row["scope"])
        if entity:
            held.setdefault(row["term"], set()).add(entity)
    return held


def _filter_condition(plan: _Plan, entry_type: str, item: Filter, held: Mapping[str, set[str]]) -> None:
    scope = _scope_entity(item.scope)
    if item.scope is not None and scope is None:
        plan.unknown("unknown_scope", f"filter {item.id!r}: no entry type {item.scope!r} (scopes: "
                                      f"{', '.join(ENTRY_TYPES)})", item.id)
        return
    if item.value is not None:
        _alphanumeric(plan, entry_type, item, scope)
    elif item.id.startswith(KEYWORD_PREFIX):
        _keyword(plan, item, scope)
    elif ontology.CURIE.match(item.id):
        if item.similarity != "exact":
            plan.warnings.append(QueryWarning("similarity_not_supported", f"filter {item.id!r}: similarity "
                                              f"{item.similarity!r} is not implemented; matched exactly", item.id))
        _ontology_term(plan, item, scope, held)
    else:
        plan.unknown("unknown_filter", f"filter {item.id!r} is not a term, field or custom term of this beacon "
                                       "(see /filtering_terms)", item.id)


def _ontology_term(plan: _Plan, item: Filter, scope: str | None, held: Mapping[str, set[str]]) -> None:
    term, sql = item.id, plan.sql
    if ontology.is_sex_term(term):
        home, condition = "individuals", f"i.sex = {sql(term)}"
    elif term.startswith("DUO:"):
        if not duo.is_known(term):
            plan.unknown("unknown_term", f"{term} is not a DUO term (DUO {duo.DUO_VERSION})", term)
            return
        codes = sorted(ontology.expand(term, item.include_descendant_terms))
        home, condition = "datasets", f"(d.description->'data_use') ?| {sql(codes, 'text[]')}"
    elif ontology.is_hpo(term):
        if term not in ontology.Hpo.shared():
            plan.unknown("unknown_term", f"{term} is not an HPO term (HPO {ontology.Hpo.shared().version})", term)
            return
        codes = sorted(ontology.expand(term, item.include_descendant_terms))
        param = sql(codes, "text[]")
        home, condition = "individuals", f"(i.phenotypes && {param} OR i.diseases && {param})"
    else:
        places = held.get(term, set())
        home = scope if scope in places else "individuals" if "individuals" in places else \
            "biosamples" if "biosamples" in places else None
        if home is None:
            plan.unknown("unknown_term", f"{term} is not a term of this beacon's data (see /filtering_terms)", term)
            return
        condition = f"b.sample_type = {sql(term)}" if home == "biosamples" else \
            f"(i.phenotypes && {sql([term], 'text[]')} OR i.diseases && {sql([term], 'text[]')})"
    if scope is not None and scope != home:
        plan.unknown("unknown_scope", f"filter {term!r} describes {home}, not {scope}", term)
        return
    plan.conds[home].append(condition)


def _keyword(plan: _Plan, item: Filter, scope: str | None) -> None:
    if scope not in (None, "datasets"):
        plan.unknown("unknown_scope", f"filter {item.id!r}: keywords describe datasets, not {scope}", item.id)
        return
    keyword = item.id[len(KEYWORD_PREFIX):].strip().lower()
    plan.conds["datasets"].append(
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(d.description->'keywords', '[]'::jsonb)) k "
        f"WHERE lower(k) = {plan.sql(keyword)})")


def _alphanumeric(plan: _Plan, entry_type: str, item: Filter, scope: str | None) -> None:
    homes = _FIELD_HOMES.get(item.id, [])
    entity = scope if scope is not None else homes[0] if len(homes) == 1 else \
        entry_type if entry_type in homes else None
    spec = _FIELDS.get((entity, item.id)) if entity else None
    if spec is None:
        where = f" of {scope}" if scope else ""
        plan.unknown("unknown_filter", f"{item.id!r} is not a field{where} this beacon filters on (fields: "
                                       f"{', '.join(sorted({f.id for f in FIELDS}))}; see /filtering_terms)", item.id)
        return
    assert item.value is not None
    if spec.entity == "g_variants" and spec.id == "id":
        if item.operator != "=" or _has_wildcard(item.value):
            raise QueryError("invalid_filter", "the variant id filter takes = and a whole id")
        _id_condition(plan, "g_variants", item.value)
        return
    plan.conds[spec.entity].append(_comparison(plan.sql, spec, item.operator, item.value))


def _has_wildcard(value: str) -> bool:
    return "%" in value or "*" in value


def _comparison(sql: _Sql, spec: AlphanumericField, operator: str, value: str) -> str:
    column = spec.column
    if spec.kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise QueryError("invalid_filter", f"{spec.id} compares numbers, not {value!r}") from None
        op = "<>" if operator == "!" else operator
        return f"{column} {op} {sql(number, 'float8')}"
    if spec.kind in ("sex", "variant_type", "contig"):
        if operator not in ("=", "!"):
            raise QueryError("invalid_filter", f"{spec.id} takes = or !, not {operator}")
        if spec.kind == "sex":
            try:
                values = [ontology.sex_term(value).id]
            except ValueError as error:
                raise QueryError("invalid_filter", str(error)) from None
        elif spec.kind == "variant_type":
            if value.strip().upper() not in QUERY_VARIANT_TYPES:
                raise QueryError("invalid_filter", f"variantType is one of {', '.join(QUERY_VARIANT_TYPES)}, "
                                                   f"not {value!r}")
            values = list(query_types(value))
        else:
            values = [normalise_contig(value)]
        match = f"{column} = ANY({sql(values, 'text[]')})"
        return match if operator == "=" else f"NOT ({match})"
    if _has_wildcard(value):
        if operator not in ("=", "!"):
            raise QueryError("invalid_filter", f"{spec.id}: wildcards go with = or !, not {operator}")
        pattern = value.replace("\\", "\\\\").replace("_", "\\_").replace("*", "%")
        match = f"{column} LIKE {sql(pattern)}"
        return match if operator == "=" else f"({column} IS NULL OR {column} NOT LIKE {sql(pattern)})"
    if operator == "!":
        return f"{column} IS DISTINCT FROM {sql(value)}"
    return f"{column} {operator} {sql(value)} COLLATE \"C\"" if operator != "=" else f"{column} = {sql(value)}"


def parse_variant_id(variant_id: str) -> tuple[str, int, str, str] | None:
    """``<contig>-<POS>-<REF>-<ALT>`` → (contig, 0-based start, ref, alt); None if it is not one."""
    parts = variant_id.rsplit("-", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[0] or not parts[2] or not parts[3]:
        return None
    return normalise_contig(parts[0]), int(parts[1]) - 1, parts[2], parts[3]


def variant_id(contig: str, start: int, ref: str, alt: str) -> str:
    return f"{contig}-{start + 1}-{ref}-{alt}"


def _id_condition(plan: _Plan, entity: str, ident: str) -> None:
    sql = plan.sql
    if entity == "g_variants":
        parsed = parse_variant_id(ident)
        if parsed is None:
            plan.impossible = True
            return
        contig, start, ref, alt = parsed
        plan.conds["g_variants"].append(f"v.contig = {sql(contig)} AND v.start = {sql(start, 'int')} AND "
                                        f"v.ref = {sql(ref)} AND v.alt = {sql(alt)}")
    elif entity == "individuals":
        plan.conds["individuals"].append(f"i.individual_id = {sql(ident)}")
    elif entity == "biosamples":
        plan.conds["biosamples"].append(f"b.biosample_id = {sql(ident)}")
    elif entity in ("runs", "analyses"):
        plan.conds[entity].append(f"f.accession = {sql(ident)}")
    elif entity == "datasets":
        plan.conds["datasets"].append(f"d.dataset_id = {sql(ident)}")
    else:
        raise QueryError("invalid_entry_type", f"no entry type {entity!r}")


# -- variant queries → conditions ------------------------------------------------------------------

_LENGTH = ("(CASE WHEN v.alt LIKE '<%' THEN v.\"end\" - v.start WHEN length(v.ref) = length(v.alt) "
           "THEN length(v.ref) ELSE abs(length(v.ref) - length(v.alt)) END)")


def _variant_conditions(plan: _Plan, query: VariantQuery) -> None:
    sql, conds = plan.sql, plan.conds["g_variants"]
    kind = query.kind()
    if kind == "hgvs":
        assert query.genomic_allele_short_form is not None
        allele = hgvs.parse(query.genomic_allele_short_form)
        conds.append(f"v.contig = {sql(allele.reference_name)}")
        conds.append(_allele_condition(sql, allele))
    elif query.reference_name is not None:
        conds.append(f"v.contig = {sql(query.reference_name)}")
    if kind == "sequence":
        start, ref, alt = query.start[0], query.reference_bases, query.alternate_bases
        if ref == "" or alt == "":
            kind_of = "insertion" if ref == "" else "deletion"
            allele = hgvs.HgvsAllele(query.reference_name or "", kind_of, start,
                                     start + len(ref or ""), ref or "", alt or "")
            conds.append(_allele_condition(sql, allele))
        else:
            conds.append(f"v.start = {sql(start, 'int')}")
            if alt is not None:
                conds.append(_bases_match(sql, "v.alt", alt))
            if ref is not None:
                conds.append(_bases_match(sql, "v.ref", ref))
    elif kind == "range":
        start, end = query.start[0], query.end[0]
        conds.append(f"v.start >= {sql(start, 'int')} - s.maxlen AND v.start < {sql(end, 'int')} "
                     f"AND v.\"end\" > {sql(start, 'int')}")
    elif kind == "bracket":
        conds.append(f"v.start >= {sql(query.start[0], 'int')} AND v.start <= {sql(query.start[1], 'int')} "
                     f"AND v.\"end\" >= {sql(query.end[0], 'int')} AND v.\"end\" <= {sql(query.end[1], 'int')}")
    if kind in ("range", "bracket", "none"):
        if query.alternate_bases:
            conds.append(_bases_match(sql, "v.alt", query.alternate_bases))
        if query.reference_bases:
            conds.append(_bases_match(sql, "v.ref", query.reference_bases))
    if query.variant_type is not None:
        conds.append(f"v.variant_type = ANY({sql(list(query_types(query.variant_type)), 'text[]')})")
    if query.variant_min_length is not None:
        conds.append(f"{_LENGTH} >= {sql(query.variant_min_length, 'int')}")
    if query.variant_max_length is not None:
        conds.append(f"{_LENGTH} <= {sql(query.variant_max_length, 'int')}")


def _bases_match(sql: _Sql, column: str, bases: str) -> str:
    if "N" in bases:
        return f"{column} LIKE {sql(bases.replace('N', '_'))}"
    return f"{column} = {sql(bases)}"


def _allele_condition(sql: _Sql, allele: hgvs.HgvsAllele) -> str:
    """The VCF rows that write ``allele``: anchored on the base before an indel, and possibly padded
    with bases shared by every allele of a multi-allelic record (``GTC`` → ``G`` written ``GTCA`` →
    ``GA``)."""
    s = allele.start
    if allele.kind == "substitution":
        parts = [f"v.start = {sql(s, 'int')}", f"left(v.alt, 1) = {sql(allele.alt)}",
                 "substr(v.ref, 2) = substr(v.alt, 2)", "length(v.ref) = length(v.alt)"]
        if allele.ref and allele.ref != "N":
            parts.append(f"left(v.ref, 1) = {sql(allele.ref)}")
        return " AND ".join(parts)
    if allele.kind == "deletion":
        length = allele.end - allele.start
        parts = [f"v.start = {sql(s - 1, 'int')}", f"length(v.ref) - length(v.alt) = {sql(length, 'int')}",
                 "left(v.ref, 1) = left(v.alt, 1)", f"substr(v.ref, {sql(length + 2, 'int')}) = substr(v.alt, 2)"]
        if allele.ref and "N" not in allele.ref:
            parts.append(f"substr(v.ref, 2, {sql(length, 'int')}) = {sql(allele.ref)}")
        return " AND ".join(parts)
    if allele.kind == "insertion":
        length = len(allele.alt)
        return " AND ".join([
            f"v.start = {sql(s - 1, 'int')}", f"length(v.alt) - length(v.ref) = {sql(length, 'int')}",
            "left(v.ref, 1) = left(v.alt, 1)", f"substr(v.alt, 2, {sql(length, 'int')}) = {sql(allele.alt)}",
            f"substr(v.alt, {sql(length + 2, 'int')}) = substr(v.ref, 2)"])
    length = allele.end - allele.start  # delins: written in place, or anchored on the base before
    return (f"v.start >= {sql(s - 1, 'int')} AND v.start <= {sql(s, 'int')} AND ("
            f"(v.start = {sql(s, 'int')} AND length(v.ref) = {sql(length, 'int')} AND v.alt = {sql(allele.alt)}) OR "
            f"(v.start = {sql(s - 1, 'int')} AND length(v.ref) = {sql(length + 1, 'int')} "
            f"AND left(v.ref, 1) = left(v.alt, 1) AND substr(v.alt, 2) = {sql(allele.alt)}))")


# -- conditions → SQL per entry type ---------------------------------------------------------------
# Every statement runs once per dataset in scope: FROM unnest(keys, maxlens) AS s(key, maxlen) with a
# LATERAL subquery whose "<alias>.dataset_key = s.key" lets the executor prune the variant partitions.

def _and(parts: Sequence[str]) -> str:
    return " AND ".join(f"({p})" for p in parts) if parts else "TRUE"


def _variants_where(plan: _Plan) -> str:
    parts = ["v.dataset_key = s.key", *plan.conds["g_variants"]]
    if _linked_to_samples(plan):
        # l.linked: see _scope. A dataset with no linked sample is not scanned (a one-time filter).
        parts.append("cardinality(l.linked) > 0 AND v.carrier_samples && l.linked")
    return _and(parts)


def _linked_to_samples(plan: _Plan) -> bool:
    return any(plan.conds[e] for e in ("individuals", "biosamples", "runs", "analyses"))


def _samples_where(plan: _Plan) -> str:
    """Genotyped samples (alias sm) of the individuals, biosamples, runs and analyses asked for."""
    parts = []
    if plan.conds["individuals"]:
        parts.append("sm.individual_id IN (SELECT i.individual_id FROM discovery.individuals i "
                     f"WHERE i.dataset_key = s.key AND {_and(plan.conds['individuals'])})")
    if plan.conds["biosamples"]:
        parts.append("sm.biosample_id IN (SELECT b.biosample_id FROM discovery.biosamples b "
                     f"WHERE b.dataset_key = s.key AND {_and(plan.conds['biosamples'])})")
    if plan.conds["analyses"]:
        parts.append(f"sm.file_accession IN (SELECT f.accession FROM discovery.files f WHERE {_files_of(plan, 'analyses')})")
    if plan.conds["runs"]:
        parts.append(f"EXISTS (SELECT 1 FROM discovery.files f WHERE {_files_of(plan, 'runs')} "
                     "AND f.sample_names && ARRAY[sm.sample_name, sm.biosample_id, sm.individual_id])")
    return _and(parts)


def _files_of(plan: _Plan, entity: str) -> str:
    """Files (alias f) of dataset s.key that are runs or analyses and meet their own conditions."""
    formats = RUN_FORMATS if entity == "runs" else ANALYSIS_FORMATS
    return _and(["f.dataset_key = s.key", f"f.format = ANY('{{{','.join(formats)}}}'::text[])", *plan.conds[entity]])


def _carriers(plan: _Plan) -> str:
    """The sample indexes of dataset s.key carrying a matching variant (an array)."""
    return ("ARRAY(SELECT DISTINCT c FROM discovery.variants v, unnest(v.carrier_samples) c "
            f"WHERE {_and(['v.dataset_key = s.key', *plan.conds['g_variants']])})")


_NAMES_OF_INDIVIDUAL = (
    "(ARRAY[i.individual_id] || ARRAY(SELECT b.biosample_id FROM discovery.biosamples b "
    "WHERE b.dataset_key = s.key AND b.individual_id = i.individual_id) || ARRAY(SELECT sm.sample_name "
    "FROM discovery.samples sm WHERE sm.dataset_key = s.key AND sm.individual_id = i.individual_id))")
_NAMES_OF_BIOSAMPLE = (
    "(ARRAY[b.biosample_id] || ARRAY(SELECT sm.sample_name FROM discovery.samples sm "
    "WHERE sm.dataset_key = s.key AND sm.biosample_id = b.biosample_id))")
"""The names a file may give a person or a sample in its sample list (read group SM, VCF column)."""


def _individuals_where(plan: _Plan) -> str:
    parts = ["i.dataset_key = s.key", *plan.conds["individuals"]]
    if plan.conds["biosamples"]:
        parts.append("EXISTS (SELECT 1 FROM discovery.biosamples b WHERE b.dataset_key = s.key "
                     f"AND b.individual_id = i.individual_id AND {_and(plan.conds['biosamples'])})")
    if plan.conds["g_variants"]:
        parts.append("EXISTS (SELECT 1 FROM discovery.samples sm WHERE sm.dataset_key = s.key "
                     f"AND sm.individual_id = i.individual_id AND sm.sample_idx = ANY({_carriers(plan)}))")
    for files in ("runs", "analyses"):
        if plan.conds[files]:
            parts.append(f"EXISTS (SELECT 1 FROM discovery.files f WHERE {_files_of(plan, files)} "
                         f"AND f.sample_names && {_NAMES_OF_INDIVIDUAL})")
    return _and(parts)


def _biosamples_where(plan: _Plan) -> str:
    parts = ["b.dataset_key = s.key", *plan.conds["biosamples"]]
    if plan.conds["individuals"]:
        parts.append("b.individual_id IN (SELECT i.individual_id FROM discovery.individuals i "
                     f"WHERE i.dataset_key = s.key AND {_and(plan.conds['individuals'])})")
    if plan.conds["g_variants"]:
        parts.append("EXISTS (SELECT 1 FROM discovery.samples sm WHERE sm.dataset_key = s.key "
                     f"AND sm.biosample_id = b.biosample_id AND sm.sample_idx = ANY({_carriers(plan)}))")
    for files in ("runs", "analyses"):
        if plan.conds[files]:
            parts.append(f"EXISTS (SELECT 1 FROM discovery.files f WHERE {_files_of(plan, files)} "
                         f"AND f.sample_names && {_NAMES_OF_BIOSAMPLE})")
    return _and(parts)


def _files_where(plan: _Plan, entity: str) -> str:
    parts = [_files_of(plan, entity)]
    if plan.conds["individuals"]:
        parts.append("f.sample_names && ARRAY(SELECT x FROM discovery.individuals i, "
                     f"unnest({_NAMES_OF_INDIVIDUAL}) x WHERE i.dataset_key = s.key "
                     f"AND {_and(plan.conds['individuals'])})")
    if plan.conds["biosamples"]:
        parts.append("f.sample_names && ARRAY(SELECT x FROM discovery.biosamples b, "
                     f"unnest({_NAMES_OF_BIOSAMPLE}) x WHERE b.dataset_key = s.key "
                     f"AND {_and(plan.conds['biosamples'])})")
    other = "analyses" if entity == "runs" else "runs"
    if plan.conds[other]:
        parts.append("f.sample_names && ARRAY(SELECT x FROM discovery.files f, unnest(f.sample_names) x "
                     f"WHERE {_files_of(plan, other)})")
    if plan.conds["g_variants"]:
        parts.append("EXISTS (SELECT 1 FROM discovery.samples sm WHERE sm.dataset_key = s.key "
                     f"AND sm.sample_idx = ANY({_carriers(plan)}) AND (sm.file_accession = f.accession "
                     "OR f.sample_names && ARRAY[sm.sample_name, sm.biosample_id, sm.individual_id]))")
    return _and(parts)


_ENTITY_SQL = {
    "g_variants": ("discovery.variants v", _variants_where,
                   "v.contig, v.start, v.ref COLLATE \"C\", v.alt COLLATE \"C\""),
    "individuals": ("discovery.individuals i", _individuals_where, "i.individual_id"),
    "biosamples": ("discovery.biosamples b", _biosamples_where, "b.biosample_id"),
    "runs": ("discovery.files f", lambda plan: _files_where(plan, "runs"), "f.accession"),
    "analyses": ("discovery.files f", lambda plan: _files_where(plan, "analyses"), "f.accession"),
}
_RECORD_COLUMNS = {
    "g_variants": "v.contig, v.start, v.\"end\", v.ref, v.alt, v.variant_type, v.allele_count, v.allele_number, "
                  "v.carrier_samples",
    "individuals": "i.individual_id, i.sex, i.phenotypes, i.diseases",
    "biosamples": "b.biosample_id, b.individual_id, b.sample_type, b.collected",
    "runs": "f.accession, f.format, f.sample_names, f.metrics, f.archived_at",
    "analyses": "f.accession, f.format, f.sample_names, f.metrics, f.archived_at",
}


def _primary_entity(plan: _Plan) -> str | None:
    """For the datasets entry type: the entity whose existence a dataset must show, if any."""
    for entity in ("g_variants", "individuals", "biosamples", "analyses", "runs"):
        if plan.conds[entity]:
            return entity
    return None


# -- search -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Dataset:
    key: int
    dataset_id: str
    access_rights: str
    assembly: str | None
    max_length: int
    variants: int
    passes: bool
    indexed_at: Any


async def search(pool: asyncpg.Pool, entry_type: str, *, variant: VariantQuery | None = None,
                 filters: Sequence[Filter] = (), dataset_ids: Sequence[str] | None = None,
                 entry_id: str | None = None, linked: tuple[str, str] | None = None,
                 records_for: Collection[str] = (), skip: int = 0, limit: int = 10) -> SearchResult:
    """Count (and for ``records_for``, list) the entries of ``entry_type`` matching, per dataset."""
    if entry_type not in ENTRY_TYPES:
        raise QueryError("invalid_entry_type", f"no entry type {entry_type!r} (one of {', '.join(ENTRY_TYPES)})")
    if skip < 0 or limit < 0:
        raise QueryError("invalid_pagination", "skip and limit are not negative")
    async with pool.acquire() as conn:
        plan = await _plan(conn, entry_type, variant, filters, entry_id, linked)
        if entry_type == "datasets" and entry_id is not None:
            dataset_ids = [entry_id] if dataset_ids is None or entry_id in dataset_ids else []
        if linked is not None and linked[0] == "datasets":
            dataset_ids = [linked[1]] if dataset_ids is None or linked[1] in dataset_ids else []
        datasets = await _datasets_in_scope(conn, plan, dataset_ids, variant)
        counts: dict[int, int] = {}
        records: dict[int, list[dict[str, Any]]] = {}
        live = [d for d in datasets if d.passes] if not plan.impossible else []
        if entry_type == "datasets":
            counts, records = await _datasets_entry(conn, plan, live, records_for)
        elif live:
            counts = await _counts(conn, plan, entry_type, live)
            wanted = [d for d in live if d.dataset_id in records_for and counts.get(d.key) and limit > 0]
            if wanted:
                records = await _records(conn, plan, entry_type, wanted, skip, limit)
    matches = [DatasetMatch(d.dataset_id, d.access_rights, counts.get(d.key, 0), records.get(d.key, []))
               for d in datasets]
    return SearchResult(matches, plan.warnings)


async def _datasets_in_scope(conn: asyncpg.Connection, plan: _Plan, dataset_ids: Sequence[str] | None,
                             variant: VariantQuery | None) -> list[_Dataset]:
    sql = plan.sql
    where = ["d.state = 'indexed'"]
    if dataset_ids is not None:
        where.append(f"d.dataset_id = ANY({sql(list(dataset_ids), 'text[]')})")
    rows = await _fetch(conn, plan, (
        "SELECT d.dataset_key, d.dataset_id, d.access_rights, d.assembly, d.max_variant_length, d.variants, "
        f"d.indexed_at, {_and(plan.conds['datasets'])} AS passes "
        f"FROM discovery.datasets d WHERE {' AND '.join(where)} ORDER BY d.dataset_id"))
    wanted_assembly = assembly_name(variant.assembly_id) if variant and variant.assembly_id else None
    return [_Dataset(r["dataset_key"], r["dataset_id"], r["access_rights"], r["assembly"], r["max_variant_length"],
                     r["variants"], bool(r["passes"]) and _assembly_matches(wanted_assembly, r["assembly"]),
                     r["indexed_at"])
            for r in rows]


_SUMMARY = ("jsonb_build_object('title', description->'title', 'description', description->'description', "
            "'landing_page', description->'landing_page', 'data_use', description->'data_use')")
"""What records need of a description: not its individuals and biosamples, which can be many."""


async def _summaries(conn: asyncpg.Connection, keys: Collection[int]) -> dict[int, dict[str, Any]]:
    rows = await conn.fetch(f"SELECT dataset_key, {_SUMMARY} AS summary FROM discovery.datasets "
                            "WHERE dataset_key = ANY($1::int[])", list(keys)) if keys else []
    return {r["dataset_key"]: _json(r["summary"]) for r in rows}


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


_ASSEMBLIES = {"grch38": "GRCh38", "hg38": "GRCh38", "gcf_000001405.26": "GRCh38", "gca_000001405.15": "GRCh38",
               "grch37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "hs37d5": "GRCh37",
               "gcf_000001405.13": "GRCh37", "gca_000001405.1": "GRCh37"}


def assembly_name(name: str) -> str:
    """``hg38``, ``GRCh38.p14``, ``GCF_000001405.40`` → ``GRCh38`` (likewise GRCh37); others as written."""
    key = name.strip().lower()
    if key.startswith("grch38") or key.startswith("gcf_000001405.") and key.split(".")[1].isdigit() \
            and int(key.split(".")[1]) >= 26:
        return "GRCh38"
    if key.startswith("grch37"):
        return "GRCh37"
    return _ASSEMBLIES.get(key, name.strip())


def _assembly_matches(wanted: str | None, held: str | None) -> bool:
    return wanted is None or held is None or assembly_name(held) == wanted


async def _fetch(conn: asyncpg.Connection, plan: _Plan, statement: str) -> list[asyncpg.Record]:
    text, values = plan.sql.bind(statement)
    return await conn.fetch(text, *values)  # type: ignore[no-any-return]


def _scope(plan: _Plan, datasets: Sequence[_Dataset], entry_type: str) -> str:
    """The FROM of a per-dataset statement: s(key, maxlen) per dataset and, when variants are linked
    to individuals, biosamples, runs or analyses, l.linked: the dataset's linked sample indexes."""
    keys = plan.sql([d.key for d in datasets], "int[]")
    maxlens = plan.sql([d.max_length for d in datasets], "int[]")
    scope = f"unnest({keys}, {maxlens}) AS s(key, maxlen)"
    if entry_type == "g_variants" and _linked_to_samples(plan):
        scope += (" CROSS JOIN LATERAL (SELECT ARRAY(SELECT sm.sample_idx FROM discovery.samples sm "
                  f"WHERE sm.dataset_key = s.key AND {_samples_where(plan)}) AS linked) l")
    return scope


async def _counts(conn: asyncpg.Connection, plan: _Plan, entry_type: str,
                  datasets: Sequence[_Dataset]) -> dict[int, int]:
    if entry_type == "g_variants" and not _linked_to_samples(plan) and not plan.conds["g_variants"]:
        return {d.key: d.variants for d in datasets}  # every variant: the count the indexer wrote
    table, where, _ = _ENTITY_SQL[entry_type]
    statement = (f"SELECT s.key, c.n FROM {_scope(plan, datasets, entry_type)} CROSS JOIN LATERAL "
                 f"(SELECT count(*) AS n FROM {table} WHERE {where(plan)}) c")
    return {row["key"]: row["n"] for row in await _fetch(conn, plan, statement)}


async def _records(conn: asyncpg.Connection, plan: _Plan, entry_type: str, datasets: Sequence[_Dataset],
                   skip: int, limit: int) -> dict[int, list[dict[str, Any]]]:
    table, where, order = _ENTITY_SQL[entry_type]
    page = f"OFFSET {plan.sql(skip, 'int')} LIMIT {plan.sql(limit, 'int')}"
    statement = (f"SELECT s.key, r.* FROM {_scope(plan, datasets, entry_type)} CROSS JOIN LATERAL "
                 f"(SELECT {_RECORD_COLUMNS[entry_type]} FROM {table} WHERE {where(plan)} ORDER BY {order} {page}) r")
    rows = await _fetch(conn, plan, statement)
    by_key = {d.key: d for d in datasets}
    grouped: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row["key"], []).append(row)
    build = _RECORD_BUILDERS[entry_type]
    summaries = await _summaries(conn, grouped) if entry_type == "g_variants" else {}
    return {key: await build(conn, by_key[key], found, summaries.get(key, {})) for key, found in grouped.items()}


async def _datasets_entry(conn: asyncpg.Connection, plan: _Plan, datasets: Sequence[_Dataset],
                          records_for: Collection[str]) -> tuple[dict[int, int], dict[int, list[dict[str, Any]]]]:
    primary = _primary_entity(plan)
    matching = list(datasets)
    if primary is not None and datasets:
        table, where, _ = _ENTITY_SQL[primary]
        statement = (f"SELECT s.key FROM {_scope(plan, datasets, primary)} "
                     f"WHERE EXISTS (SELECT 1 FROM {table} WHERE {where(plan)})")
        found = {row["key"] for row in await _fetch(conn, plan, statement)}
        matching = [d for d in datasets if d.key in found]
    counts = {d.key: 1 for d in matching}
    listed = [d for d in matching if d.dataset_id in records_for]
    summaries = await _summaries(conn, [d.key for d in listed])
    records = {d.key: [dataset_record(d.dataset_id, summaries.get(d.key, {}), d.indexed_at)] for d in listed}
    return counts, records


# -- records (Beacon v2 default model) ---------------------------------------------------------------

_REFSEQ_GRCH38 = {"1": 11, "2": 12, "3": 12, "4": 12, "5": 10, "6": 12, "7": 14, "8": 11, "9": 12, "10": 11,
                  "11": 10, "12": 12, "13": 11, "14": 9, "15": 10, "16": 10, "17": 11, "18": 10, "19": 10, "20": 11,
                  "21": 9, "22": 11, "X": 11, "Y": 10}


def refseq_accession(contig: str, assembly: str | None) -> str | None:
    """The RefSeq accession of a GRCh38/GRCh37 chromosome (``21``, GRCh38 → ``NC_000021.9``)."""
    name = assembly_name(assembly) if assembly else None
    if contig == "MT" and name in ("GRCh38", "GRCh37"):
        return "NC_012920.1"
    version = _REFSEQ_GRCH38.get(contig)
    if version is None or name not in ("GRCh38", "GRCh37"):
        return None
    number = {"X": 23, "Y": 24}.get(contig) or int(contig)
    return f"NC_{number:06d}.{version if name == 'GRCh38' else version - 1}"


def _sequence_id(contig: str, assembly: str | None) -> str:
    accession = refseq_accession(contig, assembly)
    if accession:
        return f"refseq:{accession}"
    return f"{assembly_name(assembly) if assembly else 'contig'}:{contig}"


async def _variant_records(conn: asyncpg.Connection, dataset: _Dataset, rows: Sequence[asyncpg.Record],
                           summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    carriers = sorted({idx for row in rows for idx in row["carrier_samples"]})
    samples = {r["sample_idx"]: r for r in await conn.fetch(
        "SELECT sample_idx, sample_name, file_accession, biosample_id, individual_id FROM discovery.samples "
        "WHERE dataset_key = $1 AND sample_idx = ANY($2::int[])", dataset.key, carriers)} if carriers else {}
    title = summary.get("title") or dataset.dataset_id
    reference = summary.get("landing_page") or f"/beacon/v2/datasets/{dataset.dataset_id}"
    found = []
    for row in rows:
        contig, start, ref, alt = row["contig"], row["start"], row["ref"], row["alt"]
        record: dict[str, Any] = {
            "variantInternalId": variant_id(contig, start, ref, alt),
            "variation": {
                "referenceBases": ref if _BASES.match(ref) else "N" * len(ref),
                "alternateBases": alt if _BASES.match(alt) else "",
                "variantType": row["variant_type"],
                "location": {
                    "type": "SequenceLocation",
                    "sequence_id": _sequence_id(contig, dataset.assembly),
                    "interval": {"type": "SequenceInterval",
                                 "start": {"type": "Number", "value": start},
                                 "end": {"type": "Number", "value": row["end"]}},
                },
            },
        }
        accession = refseq_accession(contig, dataset.assembly)
        if accession and row["variant_type"] == "SNP":
            record["identifiers"] = {"genomicHGVSId": f"{accession}:g.{start + 1}{ref}>{alt}"}
        if row["allele_number"]:
            record["frequencyInPopulations"] = [{
                "source": title, "sourceReference": reference,
                "frequencies": [{"population": dataset.dataset_id,
                                 "alleleFrequency": row["allele_count"] / row["allele_number"]}],
            }]
        cases = []
        for idx in row["carrier_samples"]:
            sample = samples.get(idx)
            if sample is None:
                continue
            case = {"biosampleId": sample["biosample_id"] or sample["sample_name"],
                    "analysisId": sample["file_accession"]}
            if sample["individual_id"]:
                case["individualId"] = sample["individual_id"]
            cases.append(case)
        if cases:
            record["caseLevelData"] = cases
        found.append(record)
    return found


async def _labels(conn: asyncpg.Connection, dataset: _Dataset, terms: Collection[str]) -> dict[str, str]:
    """Labels of the terms the dataset described (HPO's own label when the description gave none)."""
    rows = await conn.fetch("SELECT term, label FROM discovery.terms WHERE dataset_key = $1 AND term = ANY($2::text[]) "
                            "AND label IS NOT NULL", dataset.key, list(terms)) if terms else []
    labels = {r["term"]: r["label"] for r in rows}
    if any(ontology.is_hpo(t) and t not in labels for t in terms):
        hpo = await asyncio.to_thread(ontology.Hpo.shared)
        for term in terms:
            if ontology.is_hpo(term) and term not in labels and (label := hpo.label(term)):
                labels[term] = label
    return labels


def _term(term: str, labels: Mapping[str, str]) -> dict[str, str]:
    return {"id": term, "label": labels[term]} if term in labels else {"id": term}


async def _individual_records(conn: asyncpg.Connection, dataset: _Dataset, rows: Sequence[asyncpg.Record],
                              summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = await _labels(conn, dataset, {t for r in rows for t in (*r["phenotypes"], *r["diseases"])})
    found = []
    for row in rows:
        try:
            sex = ontology.sex_term(row["sex"])
        except ValueError:
            sex = _UNKNOWN
        record: dict[str, Any] = {"id": row["individual_id"], "sex": {"id": sex.id, "label": sex.label}}
        if row["phenotypes"]:
            record["phenotypicFeatures"] = [{"featureType": _term(t, labels)} for t in row["phenotypes"]]
        if row["diseases"]:
            record["diseases"] = [{"diseaseCode": _term(t, labels)} for t in row["diseases"]]
        found.append(record)
    return found


_SPECIMEN = {"id": "OBI:0001479", "label": "specimen from organism"}
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


async def _biosample_records(conn: asyncpg.Connection, dataset: _Dataset, rows: Sequence[asyncpg.Record],
                             summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    labels = await _labels(conn, dataset, {r["sample_type"] for r in rows if r["sample_type"]})
    unknown = {"id": _UNKNOWN.id, "label": _UNKNOWN.label}
    found = []
    for row in rows:
        record: dict[str, Any] = {"id": row["biosample_id"], "biosampleStatus": unknown}
        kind = row["sample_type"]
        if kind is None:
            record["sampleOriginType"] = unknown
        elif kind.startswith("UBERON:"):  # a tissue: the origin is a specimen taken from it
            record["sampleOriginType"] = _SPECIMEN
            record["sampleOriginDetail"] = _term(kind, labels)
        else:
            record["sampleOriginType"] = _term(kind, labels)
        if row["individual_id"]:
            record["individualId"] = row["individual_id"]
        if row["collected"] and _FULL_DATE.match(row["collected"]):  # a year alone is no date the model takes
            record["collectionDate"] = row["collected"]
        found.append(record)
    return found


async def _file_people(conn: asyncpg.Connection, dataset: _Dataset,
                       rows: Sequence[asyncpg.Record]) -> dict[str, tuple[str | None, str | None]]:
    """Each file's one sample as (biosample id, individual id), when it has exactly one."""
    names = sorted({r["sample_names"][0] for r in rows if len(r["sample_names"]) == 1})
    if not names:
        return {}
    found = await conn.fetch(
        "SELECT n.name, coalesce(b.biosample_id, sm.biosample_id) AS biosample_id, "
        "coalesce(b.individual_id, i.individual_id, sm.individual_id) AS individual_id "
        "FROM unnest($2::text[]) AS n(name) "
        "LEFT JOIN discovery.biosamples b ON b.dataset_key = $1 AND b.biosample_id = n.name "
        "LEFT JOIN discovery.individuals i ON i.dataset_key = $1 AND i.individual_id = n.name "
        "LEFT JOIN LATERAL (SELECT biosample_id, individual_id FROM discovery.samples s "
        "WHERE s.dataset_key = $1 AND s.sample_name = n.name LIMIT 1) sm ON TRUE", dataset.key, names)
    return {r["name"]: (r["biosample_id"], r["individual_id"]) for r in found}


def _date(value: Any, fallback: Any) -> str:
    moment = value or fallback
    return moment.date().isoformat() if moment is not None else "1970-01-01"


async def _run_records(conn: asyncpg.Connection, dataset: _Dataset, rows: Sequence[asyncpg.Record],
                       summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    people = await _file_people(conn, dataset, rows)
    found = []
    for row in rows:
        names = list(row["sample_names"])
        biosample, individual = people.get(names[0], (None, None)) if len(names) == 1 else (None, None)
        record: dict[str, Any] = {"id": row["accession"],
                                  "biosampleId": biosample or (names[0] if names else row["accession"]),
                                  "runDate": _date(row["archived_at"], dataset.indexed_at)}
        if individual:
            record["individualId"] = individual
        metrics = _json(row["metrics"])
        if metrics.get("platform"):
            record["platform"] = str(metrics["platform"])
        found.append(record)
    return found


async def _analysis_records(conn: asyncpg.Connection, dataset: _Dataset, rows: Sequence[asyncpg.Record],
                            summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    people = await _file_people(conn, dataset, rows)
    found = []
    for row in rows:
        names = list(row["sample_names"])
        metrics = _json(row["metrics"])
        record: dict[str, Any] = {"id": row["accession"], "analysisDate": _date(row["archived_at"], dataset.indexed_at),
                                  "pipelineName": str(metrics.get("source") or "not recorded")}
        if len(names) == 1:
            biosample, individual = people.get(names[0], (None, None))
            if biosample:
                record["biosampleId"] = biosample
            if individual:
                record["individualId"] = individual
        found.append(record)
    return found


_RECORD_BUILDERS = {"g_variants": _variant_records, "individuals": _individual_records,
                    "biosamples": _biosample_records, "runs": _run_records, "analyses": _analysis_records}


def dataset_record(dataset_id: str, description: Mapping[str, Any], indexed_at: Any = None) -> dict[str, Any]:
    """A dataset in the Beacon v2 default model, from its description as released."""
    record: dict[str, Any] = {"id": dataset_id, "name": description.get("title") or dataset_id}
    if description.get("description"):
        record["description"] = description["description"]
    if description.get("landing_page"):
        record["externalUrl"] = description["landing_page"]
    uses = [code for code in description.get("data_use") or () if duo.is_known(code)]
    if uses:
        record["dataUseConditions"] = {"duoDataUse": [{"id": code, "label": duo.label(code),
                                                       "version": duo.DUO_VERSION} for code in uses]}
    if indexed_at is not None:
        record["updateDateTime"] = indexed_at.isoformat()
    return record


# -- filtering terms and datasets -----------------------------------------------------------------

ONTOLOGY_RESOURCES = {
    "HP": {"id": "hp", "name": "Human Phenotype Ontology", "url": "https://purl.obolibrary.org/obo/hp.owl",
           "nameSpacePrefix": "HP", "iriPrefix": "https://purl.obolibrary.org/obo/HP_"},
    "NCIT": {"id": "ncit", "name": "NCI Thesaurus", "url": "https://purl.obolibrary.org/obo/ncit.owl",
             "nameSpacePrefix": "NCIT", "iriPrefix": "https://purl.obolibrary.org/obo/NCIT_"},
    "DUO": {"id": "duo", "name": "Data Use Ontology", "url": "https://purl.obolibrary.org/obo/duo.owl",
            "nameSpacePrefix": "DUO", "iriPrefix": "https://purl.obolibrary.org/obo/DUO_", "version": duo.DUO_VERSION},
    "MONDO": {"id": "mondo", "name": "Mondo Disease Ontology", "url": "https://purl.obolibrary.org/obo/mondo.owl",
              "nameSpacePrefix": "MONDO", "iriPrefix": "https://purl.obolibrary.org/obo/MONDO_"},
    "UBERON": {"id": "uberon", "name": "Uber-anatomy ontology", "url": "https://purl.obolibrary.org/obo/uberon.owl",
               "nameSpacePrefix": "UBERON", "iriPrefix": "https://purl.obolibrary.org/obo/UBERON_"},
    "OBI": {"id": "obi", "name": "Ontology for Biomedical Investigations",
            "url": "https://purl.obolibrary.org/obo/obi.owl", "nameSpacePrefix": "OBI",
            "iriPrefix": "https://purl.obolibrary.org/obo/OBI_"},
}


async def filtering_terms(pool: asyncpg.Pool, *, skip: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Beacon ``FilteringTerm``s: the ontology terms the indexed data holds (with DUO terms of the
    datasets and NCIT sex), the custom ``keyword:`` terms of the datasets, and every alphanumeric
    field of ``FIELDS`` — ordered by type, then id."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT t.term, min(t.label) AS label, array_agg(DISTINCT t.scope) AS scopes "
            "FROM discovery.terms t JOIN discovery.datasets d USING (dataset_key) "
            "WHERE d.state = 'indexed' AND t.kind = 'ontology' GROUP BY t.term")
        described = await conn.fetch(
            "SELECT DISTINCT u.code, 'data_use' AS what FROM discovery.datasets d, "
            "jsonb_array_elements_text(coalesce(d.description->'data_use', '[]'::jsonb)) u(code) "
            "WHERE d.state = 'indexed' UNION "
            "SELECT DISTINCT lower(k.kw), 'keyword' FROM discovery.datasets d, "
            "jsonb_array_elements_text(coalesce(d.description->'keywords', '[]'::jsonb)) k(kw) "
            "WHERE d.state = 'indexed'")
    terms: dict[str, dict[str, Any]] = {}
    for row in rows:
        scopes = sorted({ENTRY_TYPE_IDS[e] for e in (_scope_entity(s) for s in row["scopes"]) if e})
        term = row["term"]
        label = row["label"]
        if label is None and ontology.is_hpo(term):
            label = (await asyncio.to_thread(ontology.Hpo.shared)).label(term)
        if label is None and ontology.is_sex_term(term):
            label = ontology.sex_term(term).label
        terms[term] = {"type": _ontology_name(term), "id": term, **({"label": label} if label else {}),
                       "scopes": scopes or [ENTRY_TYPE_IDS["individuals"]]}
    for row in described:
        if row["what"] == "data_use" and duo.is_known(row["code"]):
            terms[row["code"]] = {"type": _ontology_name(row["code"]), "id": row["code"],
                                  "label": duo.label(row["code"]), "scopes": [ENTRY_TYPE_IDS["datasets"]]}
        elif row["what"] == "keyword":
            ident = KEYWORD_PREFIX + row["code"]
            terms[ident] = {"type": "custom", "id": ident, "label": f"datasets described with keyword "
                            f"{row['code']!r}", "scopes": [ENTRY_TYPE_IDS["datasets"]]}
    fields: dict[str, dict[str, Any]] = {}
    for spec in FIELDS:
        entry = fields.setdefault(spec.id, {"type": "alphanumeric", "id": spec.id, "label": spec.label, "scopes": []})
        entry["scopes"].append(ENTRY_TYPE_IDS[spec.entity])
        if entry["label"] != spec.label:
            entry["label"] = f"{spec.id} of the entry"
    ordered = (sorted((t for t in terms.values() if t["type"] != "custom"), key=lambda t: t["id"])
               + sorted((t for t in terms.values() if t["type"] == "custom"), key=lambda t: t["id"])
               + sorted(fields.values(), key=lambda t: t["id"]))
    return ordered[skip:] if limit is None else ordered[skip:skip + limit]


def _ontology_name(term: str) -> str:
    prefix = term.split(":", 1)[0]
    resource = ONTOLOGY_RESOURCES.get(prefix.upper())
    return resource["name"] if resource else prefix


def ontology_resources(terms: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Beacon ``Resource``s of the ontologies the listed filtering terms come from."""
    prefixes = sorted({t["id"].split(":", 1)[0].upper() for t in terms if t["type"] not in ("alphanumeric", "custom")})
    found = []
    for prefix in prefixes:
        resource = dict(ONTOLOGY_RESOURCES.get(prefix) or {"id": prefix.lower(), "nameSpacePrefix": prefix})
        if prefix == "HP" and ontology.Hpo._shared is not None and ontology.Hpo._shared.version:
            resource["version"] = ontology.Hpo._shared.version.rsplit("/", 1)[-1]
        found.append(resource)
    return found


async def datasets(pool: asyncpg.Pool) -> list[IndexedDataset]:
    """The indexed datasets, by id: what ``/datasets`` lists and the catalogue counts."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT dataset_id, access_rights, assembly, variants, samples, individuals, biosamples, "
            f"{_SUMMARY} AS description, indexed_at FROM discovery.datasets WHERE state = 'indexed' "
            "ORDER BY dataset_id")
    return [IndexedDataset(r["dataset_id"], r["access_rights"], r["assembly"], r["variants"], r["samples"],
                           r["individuals"], r["biosamples"],
                           dataset_record(r["dataset_id"], _json(r["description"]), r["indexed_at"]))
            for r in rows]
