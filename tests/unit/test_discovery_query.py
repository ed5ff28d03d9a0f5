"""Beacon requests → variant queries, filters and their conditions, without a database.

The SQL itself runs in tests/integration/test_beacon_variants.py against the indexed VCFs.
"""

from __future__ import annotations

from typing import Any

import pytest

from genomebus.infra.discovery import query
from genomebus.infra.discovery.ontology import Hpo
from genomebus.infra.discovery.query import Filter, QueryError, VariantQuery, filters_from_request, variant_query

MAX = 1_000_000


def ask(**params: Any) -> VariantQuery | None:
    return variant_query(params, max_range_bp=MAX)


def refused(code: str, **params: Any) -> QueryError:
    with pytest.raises(QueryError) as caught:
        ask(**params)
    assert caught.value.code == code, caught.value.message
    return caught.value


# -- variant queries -------------------------------------------------------------------------------

def test_no_variant_parameter_is_no_variant_query() -> None:
    assert ask() is None
    assert ask(datasets={"datasetIds": ["D1"]}, includeResultsetResponses="HIT") is None


def test_a_sequence_query_names_a_position_and_bases() -> None:
    found = ask(referenceName="chr21", start=[5030550], referenceBases="a", alternateBases="c")
    assert found == VariantQuery(reference_name="21", start=(5030550,), reference_bases="A", alternate_bases="C")
    assert found.kind() == "sequence"
    assert ask(referenceName="refseq:NC_000021.9", start="5030550", variantType="snv") == VariantQuery(
        reference_name="21", start=(5030550,), variant_type="SNV")


def test_get_requests_send_positions_as_comma_separated_strings() -> None:
    found = ask(referenceName="21", start="100,200", end="300,400")
    assert found is not None and found.start == (100, 200) and found.end == (300, 400)
    assert found.kind() == "bracket"
    ranged = ask(referenceName="21", start="100", end="300", variantType="DEL", variantMinLength="2",
                 variantMaxLength=10, assemblyId="GRCh38")
    assert ranged == VariantQuery(reference_name="21", start=(100,), end=(300,), variant_type="DEL",
                                  variant_min_length=2, variant_max_length=10, assembly_id="GRCh38")
    assert ranged.kind() == "range"


def test_trimmed_indels_send_one_empty_allele() -> None:
    assert ask(referenceName="1", start=[4404404], referenceBases="", alternateBases="T").reference_bases == ""
    refused("invalid_bases", referenceName="1", start=[4404404], referenceBases="", alternateBases="")


def test_the_hgvs_short_form_names_its_own_place() -> None:
    found = ask(genomicAlleleShortForm="NC_000017.11:g.43045703G>A")
    assert found is not None and found.kind() == "hgvs"
    assert "understood: NC_000017.11:g.43045703G>A" in refused(
        "invalid_hgvs", genomicAlleleShortForm="NM_004006.2:c.4375C>T").message
    refused("conflicting_parameters", genomicAlleleShortForm="17:g.5G>A", referenceName="17", start=[4])


def test_a_reference_name_alone_or_a_type_alone_asks_genome_wide() -> None:
    assert ask(referenceName="X").kind() == "none"
    assert ask(variantType="INDEL").kind() == "none"


@pytest.mark.parametrize(("code", "params"), [
    ("missing_reference_name", {"start": [100], "alternateBases": "A"}),
    ("invalid_coordinates", {"referenceName": "1", "end": [100]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [1, 2], "end": [3]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [1], "end": [3, 4]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [1, 2, 3], "end": [4, 5, 6]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [-1], "alternateBases": "A"}),
    ("invalid_coordinates", {"referenceName": "1", "start": ["x"], "alternateBases": "A"}),
    ("invalid_coordinates", {"referenceName": "1", "start": [True], "alternateBases": "A"}),
    ("invalid_coordinates", {"referenceName": "1", "start": [100], "end": [100]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [100], "end": [50]}),
    ("invalid_coordinates", {"referenceName": "1", "start": [200, 100], "end": [300, 400]}),
    ("missing_alternate_bases", {"referenceName": "1", "start": [100]}),
    ("range_too_wide", {"referenceName": "1", "start": [0], "end": [MAX + 1]}),
    ("range_too_wide", {"referenceName": "1", "start": [0, MAX + 1], "end": [MAX + 2, MAX + 3]}),
    ("invalid_bases", {"referenceName": "1", "start": [1], "alternateBases": "<DEL>"}),
    ("invalid_bases", {"referenceName": "1", "start": [1], "alternateBases": "AX"}),
    ("invalid_variant_type", {"referenceName": "1", "start": [1], "variantType": "BIG"}),
    ("invalid_length", {"variantMinLength": -1}),
    ("invalid_length", {"variantMinLength": "many"}),
    ("invalid_length", {"variantMinLength": 5, "variantMaxLength": 2}),
    ("invalid_reference_name", {"referenceName": 21}),
    ("unsupported_parameter", {"geneId": "BRCA1"}),
    ("unsupported_parameter", {"aminoacidChange": "V600E"}),
    ("unsupported_parameter", {"mateName": "2", "referenceName": "1", "start": [1], "variantType": "BND"}),
])
def test_requests_this_node_refuses_say_why(code: str, params: dict[str, Any]) -> None:
    error = refused(code, **params)
    assert error.message and str(error) == error.message


def test_the_range_limit_is_the_callers_setting() -> None:
    assert variant_query({"referenceName": "1", "start": [0], "end": [10]}, max_range_bp=10) is not None
    with pytest.raises(QueryError, match="at most 9"):
        variant_query({"referenceName": "1", "start": [0], "end": [10]}, max_range_bp=9)


# -- filters ---------------------------------------------------------------------------------------

def test_get_filters_are_terms_or_field_comparisons() -> None:
    assert filters_from_request("HP:0001250, keyword:rare disease,alleleFrequency:<0.01,sex=female,id:!I%") == (
        Filter("HP:0001250"), Filter("keyword:rare disease"), Filter("alleleFrequency", "<", "0.01"),
        Filter("sex", "=", "female"), Filter("id", "!", "I%"))
    assert filters_from_request("collectionDate>=2020") == (Filter("collectionDate", ">=", "2020"),)
    assert filters_from_request("") == () and filters_from_request(None) == ()


def test_post_filters_are_objects_with_their_defaults() -> None:
    found = filters_from_request([
        {"id": "HP:0001250", "includeDescendantTerms": False, "similarity": "high", "scope": "individuals"},
        {"id": "alleleCount", "operator": ">=", "value": 2},
        {"id": "NCIT:C16576"},
        "MONDO:0007739",
    ])
    assert found == (Filter("HP:0001250", include_descendant_terms=False, similarity="high", scope="individuals"),
                     Filter("alleleCount", ">=", "2"), Filter("NCIT:C16576"), Filter("MONDO:0007739"))


@pytest.mark.parametrize("bad", [
    [{"operator": "="}], [{"id": ""}], [{"id": "age", "operator": "~", "value": "3"}],
    [{"id": "HP:0001250", "includeDescendantTerms": "yes"}], [{"id": "HP:0001250", "similarity": "close"}],
    [{"id": "HP:0001250", "scope": 3}], [{"id": "age", "value": True}], [{"id": "age", "value": [1]}], [42],
])
def test_malformed_filters_are_refused(bad: list[Any]) -> None:
    with pytest.raises(QueryError) as caught:
        filters_from_request(bad)
    assert caught.value.code == "invalid_filter"


class HeldTerms:
    """A connection that answers only the question "where does the index hold these terms?"."""

    def __init__(self, held: dict[str, str]) -> None:
        self.held = held
        self.asked: list[list[str]] = []

    async def fetch(self, text: str, *values: Any) -> list[dict[str, str]]:
        assert "discovery.terms" in text
        self.asked.append(values[0])
        return [{"term": t, "scope": s} for t, s in self.held.items() if t in values[0]]


async def plan(entry_type: str, *filters: Filter, held: dict[str, str] | None = None,
               variant: VariantQuery | None = None) -> query._Plan:
    return await query._plan(HeldTerms(held or {}), entry_type, variant, filters, None, None)  # type: ignore[arg-type]


def where(found: query._Plan) -> dict[str, int]:
    return {entity: len(conds) for entity, conds in found.conds.items() if conds}


async def test_ontology_terms_go_to_the_entries_that_hold_them() -> None:
    found = await plan("g_variants", Filter("NCIT:C16576"), Filter("HP:0001250"), Filter("DUO:0000042"),
                       Filter("UBERON:0000178"), Filter("MONDO:0007739"),
                       held={"UBERON:0000178": "biosamples", "MONDO:0007739": "individuals"})
    assert where(found) == {"individuals": 3, "biosamples": 1, "datasets": 1}
    assert not found.impossible and found.warnings == []


async def test_hpo_terms_match_their_descendants_unless_asked_not_to() -> None:
    seizure, focal = "HP:0001250", "HP:0007359"
    wide = await plan("individuals", Filter(seizure))
    narrow = await plan("individuals", Filter(seizure, include_descendant_terms=False))
    wide_terms = next(v for v in wide.sql.values if isinstance(v, list))
    narrow_terms = next(v for v in narrow.sql.values if isinstance(v, list))
    assert {seizure, focal} <= set(wide_terms)
    assert seizure in narrow_terms and focal not in narrow_terms
    assert set(narrow_terms) == {seizure, *[t for t in Hpo.shared().descendants(seizure) if Hpo.shared().resolve(t)
                                            == seizure]}


async def test_duo_terms_match_the_narrower_data_uses() -> None:
    found = await plan("datasets", Filter("DUO:0000042"))
    assert set(found.sql.values[0]) == {"DUO:0000042", "DUO:0000006", "DUO:0000007"}


@pytest.mark.parametrize(("item", "code"), [
    (Filter("age", ">", "P70Y"), "unknown_filter"),
    (Filter("ethnicity"), "unknown_filter"),
    (Filter("HP:9999999"), "unknown_term"),
    (Filter("DUO:9999999"), "unknown_term"),
    (Filter("MONDO:0000001"), "unknown_term"),
    (Filter("HP:0001250", scope="biosamples"), "unknown_scope"),
    (Filter("HP:0001250", scope="cohorts"), "unknown_scope"),
    (Filter("keyword:rare", scope="individuals"), "unknown_scope"),
    (Filter("alleleCount", "=", "1", scope="individuals"), "unknown_filter"),
])
async def test_what_this_beacon_cannot_filter_on_is_a_warning_and_matches_nothing(item: Filter, code: str) -> None:
    found = await plan("individuals", item)
    assert found.impossible
    assert [(w.code, w.filter_id) for w in found.warnings] == [(code, item.id)]
    assert item.id in found.warnings[0].message


async def test_a_similarity_other_than_exact_is_answered_exactly_with_a_warning() -> None:
    found = await plan("individuals", Filter("NCIT:C16576", similarity="low"))
    assert not found.impossible and where(found) == {"individuals": 1}
    assert [w.code for w in found.warnings] == ["similarity_not_supported"]


async def test_fields_belong_to_their_entry_type_and_id_to_the_queried_one() -> None:
    assert where(await plan("biosamples", Filter("id", "=", "B1"))) == {"biosamples": 1}
    assert where(await plan("g_variants", Filter("id", "=", "21-100-A-G"))) == {"g_variants": 1}
    assert where(await plan("g_variants", Filter("id", "=", "I1", scope="individuals"))) == {"individuals": 1}
    assert where(await plan("g_variants", Filter("sex", "!", "female"), Filter("alleleFrequency", "<", "0.1"),
                            Filter("collectionDate", ">", "2019"), Filter("name", "=", "%cancer%"))) == {
        "individuals": 1, "g_variants": 1, "biosamples": 1, "datasets": 1}


async def test_keywords_are_custom_terms_of_datasets() -> None:
    found = await plan("g_variants", Filter("keyword:Rare"))
    assert where(found) == {"datasets": 1} and found.sql.values == ["rare"]


@pytest.mark.parametrize("item", [
    Filter("alleleFrequency", "<", "rare"), Filter("sex", "=", "robot"), Filter("sex", "<", "female"),
    Filter("name", "<", "%x%"), Filter("variantType", "=", "HUGE"), Filter("id", "!", "21-1-A-G"),
])
async def test_a_comparison_that_cannot_be_made_is_refused(item: Filter) -> None:
    with pytest.raises(QueryError) as caught:
        await plan("g_variants", item)
    assert caught.value.code == "invalid_filter"


async def test_text_wildcards_become_like_patterns_with_literal_underscores() -> None:
    found = await plan("individuals", Filter("id", "=", "NA_1*"))
    assert found.sql.values == ["NA\\_1%"] and "LIKE" in found.conds["individuals"][0]
    negated = await plan("individuals", Filter("id", "!", "NA%"))
    assert "NOT LIKE" in negated.conds["individuals"][0]


async def test_only_terms_outside_hpo_ncit_sex_and_duo_are_looked_up() -> None:
    conn = HeldTerms({"UBERON:0000178": "biosamples"})
    await query._plan(conn, "g_variants", None, (Filter("HP:0001250"), Filter("NCIT:C20197"),  # type: ignore[arg-type]
                                                 Filter("UBERON:0000178")), None, None)
    assert conn.asked == [["UBERON:0000178"]]


async def test_a_variant_query_is_a_condition_on_variants() -> None:
    found = await plan("individuals", variant=VariantQuery(reference_name="21", start=(100,), end=(200,)))
    assert where(found) == {"g_variants": 2}
    assert "s.maxlen" in found.conds["g_variants"][1]  # the scan looks back the dataset's longest variant


# -- ids, assemblies, parameters -------------------------------------------------------------------

@pytest.mark.parametrize(("contig", "start", "ref", "alt"), [
    ("21", 5030550, "A", "C"), ("HLA-A*01:01", 9, "G", "GT"), ("1", 0, "N", "<DEL>"), ("2", 321, "G", "G]17:198982]"),
])
def test_variant_ids_read_back_to_their_allele(contig: str, start: int, ref: str, alt: str) -> None:
    ident = query.variant_id(contig, start, ref, alt)
    assert ident.startswith(f"{contig}-{start + 1}-")
    assert query.parse_variant_id(ident) == (contig, start, ref, alt)


def test_a_variant_id_names_the_vcf_position_and_chromosomes_by_any_name() -> None:
    assert query.parse_variant_id("chr21-5030551-A-C") == ("21", 5030550, "A", "C")
    assert query.parse_variant_id("21-x-A-C") is None and query.parse_variant_id("21-5-A") is None


def test_assemblies_by_any_of_their_names() -> None:
    for name in ("GRCh38", "hg38", "GRCh38.p14", "GCF_000001405.40"):
        assert query.assembly_name(name) == "GRCh38"
    for name in ("GRCh37", "hg19", "b37", "GRCh37.p13", "hs37d5"):
        assert query.assembly_name(name) == "GRCh37"
    assert query.assembly_name("CHM13") == "CHM13"
    assert query._assembly_matches("GRCh38", "hg38") and query._assembly_matches("GRCh38", None)
    assert not query._assembly_matches("GRCh38", "GRCh37") and query._assembly_matches(None, "GRCh37")


def test_chromosomes_have_their_refseq_accession_per_assembly() -> None:
    assert query.refseq_accession("17", "GRCh38") == "NC_000017.11"
    assert query.refseq_accession("17", "hg19") == "NC_000017.10"
    assert query.refseq_accession("X", "GRCh38") == "NC_000023.11"
    assert query.refseq_accession("MT", "GRCh37") == "NC_012920.1"
    assert query.refseq_accession("17", None) is None and query.refseq_accession("GL000192.1", "GRCh37") is None


def test_parameters_are_numbered_per_statement() -> None:
    sql = query._Sql()
    a, b, c = sql("a"), sql(2, "int"), sql("c")
    assert sql.bind(f"x = {c} AND y = {a} OR z = {c}") == ("x = $1 AND y = $2 OR z = $1", ["c", "a"])
    assert sql.bind(f"w = {b}") == ("w = $1::int", [2])


def test_a_dataset_record_carries_its_title_landing_page_and_data_use() -> None:
    record = query.dataset_record("GDI-FI-1", {"title": "Rare diseases", "description": "Exomes",
                                               "landing_page": "https://example.org/d1",
                                               "data_use": ["DUO:0000007", "DUO:9999999"]})
    assert record == {"id": "GDI-FI-1", "name": "Rare diseases", "description": "Exomes",
                      "externalUrl": "https://example.org/d1",
                      "dataUseConditions": {"duoDataUse": [{"id": "DUO:0000007", "label": "disease specific research",
                                                            "version": "2021-02-23"}]}}
