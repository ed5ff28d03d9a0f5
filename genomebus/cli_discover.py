"""``genomebus discover``: ask the node's Beacon v2 (or the whole federation) whether it holds a variant.

The answer is a table of datasets (and nodes, with ``--federated``): found or not, the count when the
caller may see one and how exact it is, then the records the caller may see. Without a token the
Beacon says yes or no (and counts for public datasets); with a researcher's token it counts; with a
grant for a dataset it gives that dataset's records. ``--json`` prints the Beacon's answer as it came.

Exit codes (``genomebus --help``): 0 an answer, found or not; 2 a query that cannot be sent, or that
the Beacon cannot read (400); 4 not found (404: a wrong Beacon URL); 5 refused (401: the token; 429:
the query budget is spent, with when to try again); 6 the Beacon does not answer, or cannot now (5xx).
"""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from typing import Annotated, Any

import typer

from genomebus.cli import (
    DEFAULT_DATA_DIR,
    DataDir,
    ExitCode,
    add_row,
    fail,
    out,
    run,
    say,
    settings_for,
    table,
)

TokenOpt = Annotated[str | None, typer.Option(
    "--token", envvar="GENOMEBUS_TOKEN", show_envvar=True,
    help="Your bearer token (`genomebus token issue` in the local profile): counts for a researcher, records "
         "where you hold a grant; without one, yes/no answers (and counts of public datasets)")]


class Entry(str, Enum):
    g_variants = "g_variants"
    individuals = "individuals"
    biosamples = "biosamples"
    runs = "runs"
    analyses = "analyses"
    datasets = "datasets"


class Granularity(str, Enum):
    boolean = "boolean"
    count = "count"
    record = "record"


class ResultSets(str, Enum):
    all = "all"
    hit = "hit"
    miss = "miss"
    none = "none"


def discover(
    query: Annotated[str | None, typer.Argument(
        help="A variant: chr:pos:REF>ALT (21:10000062:A>G), chr-pos-REF-ALT, chr:pos, chr:start-end (1-based, "
             "inclusive, as in VCF and samtools) or an HGVS genomic short form (NC_000021.9:g.10000062A>G); "
             "none to ask by filters only")] = None,
    entry: Annotated[Entry, typer.Option("--entry", "-e", help="What to find: variants, or the individuals, "
                                                                "biosamples, runs, analyses, datasets that match")]
    = Entry.g_variants,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", help="A term (HP:0001250, NCIT:C16576) or a comparison (alleleFrequency<0.01, sex=female); "
                               "repeat for several (all must hold)")] = None,
    no_descendants: Annotated[bool, typer.Option("--no-descendants", help="Terms match only themselves, not "
                                                                          "their descendant terms")] = False,
    variant_type: Annotated[str | None, typer.Option("--type", help="Only variants of this type (SNP, DEL, INS, "
                                                                     "INDEL, MNP, ...)")] = None,
    assembly: Annotated[str | None, typer.Option("--assembly", help="The assembly the positions are on "
                                                                    "(e.g. GRCh38)")] = None,
    granularity: Annotated[Granularity, typer.Option("--granularity", help="The most detail wanted; the Beacon "
                                                                            "gives no more than you may see")]
    = Granularity.record,
    resultsets: Annotated[ResultSets, typer.Option("--resultsets", help="Which datasets to list: all, hit (those "
                                                                        "that match), miss, none")]
    = ResultSets.all,
    skip: Annotated[int, typer.Option("--skip", min=0, help="Records to skip (paging)")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Records per dataset at most")] = 10,
    federated: Annotated[bool, typer.Option("--federated", help="Ask this node and every peer it knows at once "
                                                                "(/beacon/v2/federated), with a status per node")]
    = False,
    beacon: Annotated[str | None, typer.Option("--beacon", help="Another Beacon v2's base URL (default: this "
                                                                "node's, <gateway>/beacon/v2)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The Beacon's answer as it came (JSON)")] = False,
    token: TokenOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Find variants (or individuals, biosamples, ...) through the Beacon: yes/no, counts or records, by who you are."""
    from genomebus.producers.discover import DiscoveryClient, InvalidQuery, parse_filter, parse_variant, request_body

    try:
        parameters = dict(parse_variant(query)) if query else {}
        if variant_type:
            parameters["variantType"] = variant_type
        if assembly:
            parameters["assemblyId"] = assembly
        if (variant_type or assembly) and query is None:
            raise InvalidQuery("--type and --assembly qualify a variant or a region; give one, "
                               "e.g. 21:10000000-10100000")
        body = request_body(request_parameters=parameters,
                            filters=[parse_filter(f, include_descendant_terms=not no_descendants)
                                     for f in filters or ()],
                            granularity=granularity.value, include=resultsets.value.upper(), skip=skip, limit=limit)
    except InvalidQuery as exc:
        raise fail(str(exc), ExitCode.USAGE) from exc
    if not parameters and not filters and entry is Entry.g_variants:
        raise fail("give a variant or a region (e.g. 21:10000062:A>G or 21:10000000-10100000), or --filter and an "
                   "--entry such as individuals", ExitCode.USAGE)
    settings = settings_for(data_dir)

    async def go() -> dict[str, Any]:
        async with DiscoveryClient(settings, token, beacon_url=beacon) as client:
            return await client.post(entry.value, body, federated=federated)

    document = _asked(settings, go, beacon=beacon, token=token)
    if as_json:
        say(json.dumps(document, indent=2))
        return
    show(document, entry.value, query=query, filters=filters or [])


def _asked(settings: Any, go: Any, *, beacon: str | None, token: str | None) -> dict[str, Any]:
    """Ask; every way it can end is one plain line with its exit code."""
    from genomebus.producers.commands import GatewayUnavailable
    from genomebus.producers.discover import BeaconRefused

    try:
        if beacon is None:
            return run(settings, go)
        return asyncio.run(go())  # another Beacon: no local node needs to be running
    except KeyboardInterrupt as exc:
        raise fail("interrupted", ExitCode.INTERRUPTED) from exc
    except GatewayUnavailable as exc:  # only with --beacon: `run` says it for the node's own gateway
        raise fail(f"{exc}; check the URL (a Beacon v2 base URL ends in /beacon/v2 on genomebus nodes)",
                   ExitCode.UNAVAILABLE) from exc
    except BeaconRefused as exc:
        raise fail(*refusal(exc, token)) from exc


def refusal(exc: Any, token: str | None) -> tuple[str, ExitCode]:
    """The line and the exit code for a Beacon's error answer."""
    if exc.status == 400:
        return f"the Beacon cannot read the query: {exc.detail}", ExitCode.USAGE
    if exc.status in (401, 403):
        return (f"your token was refused ({exc.detail}); get a new one with `genomebus token issue` (locally) or "
                "your node's login service, or ask without --token for yes/no answers"), ExitCode.REFUSED
    if exc.status == 404:
        return (f"the Beacon has no such endpoint ({exc.detail}); check --beacon (a Beacon v2 base URL, e.g. "
                "https://node.example/beacon/v2)"), ExitCode.NOT_FOUND
    if exc.status == 429:
        when = f"try again in {exc.retry_after} s" if exc.retry_after else "try again later"
        who = "" if token else ", or sign in (an authenticated researcher has a larger budget)"
        return f"the query budget is spent ({exc.detail}); {when}{who}", ExitCode.REFUSED
    if exc.status >= 500:
        return f"the Beacon cannot answer now ({exc.detail}); try again later", ExitCode.UNAVAILABLE
    return f"the Beacon answered {exc.status} ({exc.detail})", ExitCode.FAILURE


# -- the answer, for people ------------------------------------------------------------------------------


def show(document: dict[str, Any], entry_type: str, *, query: str | None, filters: list[str]) -> None:
    from genomebus.producers.discover import read_answer

    answer = read_answer(document)
    console = out()
    asked = " and ".join([q for q in [query, ", ".join(filters) if filters else None] if q]) or "everything"
    found = "found" if answer.exists else "not found"
    count = f", {answer.count:,} in all" if answer.count is not None else ""
    say(f"{entry_type} matching {asked}: {found}{count} (granularity returned: {answer.granularity})")
    if answer.nodes:
        nodes = table("nodes", "node", "status", "answered in", "granularity", "detail")
        for n in answer.nodes:
            add_row(nodes, n.node + (" (this node)" if n.own else ""), n.status,
                    f"{n.elapsed_s:.2f} s" if isinstance(n.elapsed_s, int | float) else "",
                    n.granularity or "", n.detail or {True: "found", False: "not found"}.get(n.exists, ""))
        console.print(nodes)
    sets = table("datasets", *(["node"] if answer.nodes else []), "dataset", "found", "count", "granularity")
    for rs in answer.result_sets:
        add_row(sets, *([rs.node or ""] if answer.nodes else []), rs.id, "yes" if rs.exists else "no",
                count_text(rs), rs.granularity or "")
    if answer.result_sets:
        console.print(sets)
    for rs in answer.result_sets:
        if rs.records:
            console.print(records_table(entry_type, rs))
    for warning in answer.warnings:
        say(f"note: {warning}")


def count_text(rs: Any) -> str:
    """A result set's count as honest words: exact, a small count shown as its threshold, or rounded up."""
    if rs.count is None:
        return "—" if rs.granularity == "boolean" else ""
    if rs.count_adjusted_to is not None and rs.count == rs.count_adjusted_to:
        return f"1 to {rs.count} (a small count, not shown exactly)"
    if rs.count_precision == "rounded":
        return f"{rs.count:,} (rounded up)"
    if rs.count_precision == "imprecise":
        return f"about {rs.count:,}"
    return f"{rs.count:,}"


def records_table(entry_type: str, rs: Any) -> Any:
    where = f" at {rs.node}" if rs.node else ""
    title = f"{rs.id}{where}: {len(rs.records)} record{'s' if len(rs.records) != 1 else ''}"
    columns, row = RECORDS.get(entry_type, (("id", "record"), _any_row))
    t = table(title, *columns)
    for record in rs.records:
        add_row(t, *row(record))
    return t


def _label(term: Any) -> str:
    if not isinstance(term, dict):
        return "" if term is None else str(term)
    return str(term.get("label") or term.get("id") or "")


def _variant_row(record: dict[str, Any]) -> tuple[str, ...]:
    variation = record.get("variation") or {}
    location = variation.get("location") or {}
    interval = location.get("interval") or {}
    start = (interval.get("start") or {}).get("value")
    sequence = str(location.get("sequence_id") or "")
    where = f"{sequence.split(':')[-1]}:{start + 1:,}" if isinstance(start, int) else sequence
    frequencies = [f.get("alleleFrequency") for p in record.get("frequencyInPopulations") or ()
                   for f in (p.get("frequencies") or ()) if isinstance(f, dict)]
    carriers = [c.get("individualId") or c.get("biosampleId") for c in record.get("caseLevelData") or ()
                if isinstance(c, dict)]
    return (str(record.get("variantInternalId") or ""), where,
            f"{variation.get('referenceBases', '')}>{variation.get('alternateBases', '')}",
            str(variation.get("variantType") or ""),
            ", ".join(f"{f:.4g}" for f in frequencies if isinstance(f, int | float)),
            ", ".join(str(c) for c in carriers if c))


def _individual_row(record: dict[str, Any]) -> tuple[str, ...]:
    phenotypes = [_label(p.get("featureType")) for p in record.get("phenotypicFeatures") or () if isinstance(p, dict)]
    diseases = [_label(d.get("diseaseCode")) for d in record.get("diseases") or () if isinstance(d, dict)]
    return str(record.get("id") or ""), _label(record.get("sex")), ", ".join(phenotypes), ", ".join(diseases)


def _biosample_row(record: dict[str, Any]) -> tuple[str, ...]:
    return (str(record.get("id") or ""), str(record.get("individualId") or ""),
            _label(record.get("sampleOriginType") or record.get("biosampleStatus")),
            str(record.get("collectionDate") or ""))


def _any_row(record: dict[str, Any]) -> tuple[str, ...]:
    rest = {k: v for k, v in record.items() if k != "id"}
    return str(record.get("id") or ""), json.dumps(rest, separators=(", ", ": "))


RECORDS = {
    "g_variants": (("variant", "position", "change", "type", "allele frequency", "carriers"), _variant_row),
    "individuals": (("individual", "sex", "phenotypes", "diseases"), _individual_row),
    "biosamples": (("biosample", "individual", "sample", "collected"), _biosample_row),
}
