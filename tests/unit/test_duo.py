"""The DUO check: the term table against DUO 2021-02-23, the permission hierarchy, each modifier rule, the
matching examples of the DUO documentation, and properties over generated uses and datasets."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genomebus.schemas.duo import (
    DUO_VERSION,
    TERMS,
    DataUseConditions,
    DatasetVerdict,
    Finding,
    ResearchUse,
    ancestors,
    check,
    check_all,
    is_known,
    label,
    lookup,
    term,
)

TODAY = date(2025, 6, 1)
APPLICANT = "researcher-7"
UNKNOWN = "DUO:0000999"
MELANOMA, CANCER, LUNG_CANCER = "MONDO:0005105", "MONDO:0004992", "MONDO:0008903"


def code(name: str) -> str:
    return name if name.startswith("DUO:") else term(name).code


def dataset(*names: str, **parameters: Any) -> DataUseConditions:
    return DataUseConditions(terms=tuple(code(name) for name in names), **parameters)


def research(*names: str, **facts: Any) -> ResearchUse:
    return ResearchUse(terms=tuple(code(name) for name in names), **facts)


def verdict(use: ResearchUse, conditions: DataUseConditions) -> str:
    return check(use, conditions, applicant=APPLICANT, today=TODAY)[0]


def findings(use: ResearchUse, conditions: DataUseConditions) -> list[tuple[str, str]]:
    return [(found.code, found.severity) for found in check(use, conditions, applicant=APPLICANT, today=TODAY)[1]]


# --- the term table -------------------------------------------------------------------------------------------

# Copied from duo.owl / duo.csv of release 2021-02-23 (github.com/EBISPOT/DUO, tag v2021-02-23).
RELEASE = [
    ("DUO:0000004", "NRES", "no restriction", "permission"),
    ("DUO:0000042", "GRU", "general research use", "permission"),
    ("DUO:0000006", "HMB", "health or medical or biomedical research", "permission"),
    ("DUO:0000007", "DS", "disease specific research", "permission"),
    ("DUO:0000011", "POA", "population origins or ancestry research only", "permission"),
    ("DUO:0000043", "CC", "clinical care use", "modifier"),
    ("DUO:0000015", "NMDS", "no general methods research", "modifier"),
    ("DUO:0000016", "GSO", "genetic studies only", "modifier"),
    ("DUO:0000012", "RS", "research specific restrictions", "modifier"),
    ("DUO:0000018", "NPUNCU", "not for profit, non commercial use only", "modifier"),
    ("DUO:0000019", "PUB", "publication required", "modifier"),
    ("DUO:0000020", "COL", "collaboration required", "modifier"),
    ("DUO:0000021", "IRB", "ethics approval required", "modifier"),
    ("DUO:0000022", "GS", "geographical restriction", "modifier"),
    ("DUO:0000024", "MOR", "publication moratorium", "modifier"),
    ("DUO:0000025", "TS", "time limit on use", "modifier"),
    ("DUO:0000026", "US", "user specific restriction", "modifier"),
    ("DUO:0000027", "PS", "project specific restriction", "modifier"),
    ("DUO:0000028", "IS", "institution specific restriction", "modifier"),
    ("DUO:0000029", "RTN", "return to database or resource", "modifier"),
    ("DUO:0000044", "NPOA", "population origins or ancestry research prohibited", "modifier"),
    ("DUO:0000045", "NPU", "not for profit organisation use only", "modifier"),
    ("DUO:0000046", "NCU", "non-commercial use only", "modifier"),
]


def test_the_table_is_the_2021_02_23_release():
    assert DUO_VERSION == "2021-02-23"
    current = {(t.code, t.shorthand, t.label, t.kind) for t in TERMS if not t.obsolete}
    assert current == set(RELEASE)


@pytest.mark.parametrize(("duo_code", "shorthand", "text", "kind"), RELEASE)
def test_a_term_is_found_by_code_or_shorthand(duo_code: str, shorthand: str, text: str, kind: str):
    assert term(duo_code) == term(shorthand) == lookup(shorthand)
    assert (term(duo_code).kind, label(duo_code), is_known(duo_code)) == (kind, text, True)


def test_the_is_a_hierarchy_of_the_release():
    assert ancestors("DUO:0000007") == ("DUO:0000006", "DUO:0000042")  # DS < HMB < GRU
    assert ancestors("DUO:0000045") == ancestors("DUO:0000046") == ("DUO:0000018",)  # NPU, NCU < NPUNCU
    assert ancestors("DUO:0000004") == ancestors("DUO:0000011") == ()  # NRES, POA: directly under the root
    assert ancestors(UNKNOWN) == ()


def test_obsolete_terms_are_known_and_name_their_replacements():
    gru_cc, ru = term("DUO:0000005"), term("DUO:0000014")
    assert (gru_cc.shorthand, gru_cc.obsolete, gru_cc.replaced_by) == ("GRU-CC", True, ("DUO:0000042", "DUO:0000043"))
    assert (ru.shorthand, ru.obsolete, ru.replaced_by) == ("RU", True, ())


def test_an_unknown_code_is_none_or_a_key_error():
    assert lookup(UNKNOWN) is None and not is_known(UNKNOWN) and not is_known("gru")
    with pytest.raises(KeyError):
        term(UNKNOWN)
    with pytest.raises(KeyError):
        label(UNKNOWN)


# --- permissions ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("permission", "category", "expected"), [
    ("NRES", "NRES", "compatible"), ("NRES", "GRU", "compatible"), ("NRES", "HMB", "compatible"),
    ("NRES", "POA", "compatible"),
    ("GRU", "GRU", "compatible"), ("GRU", "HMB", "compatible"), ("GRU", "POA", "compatible"),
    ("HMB", "HMB", "compatible"), ("HMB", "POA", "incompatible"), ("HMB", "GRU", "incompatible"),
    ("POA", "POA", "compatible"), ("POA", "HMB", "incompatible"), ("POA", "GRU", "incompatible"),
])
def test_a_permission_accepts_its_own_category_and_those_under_it(permission: str, category: str, expected: str):
    assert verdict(research(category), dataset(permission)) == expected


@pytest.mark.parametrize("permission", ["NRES", "GRU", "HMB"])
def test_a_disease_specific_use_fits_every_permission_above_ds(permission: str):
    assert verdict(research("DS", diseases=(MELANOMA,)), dataset(permission)) == "compatible"


def test_a_refused_category_is_named_in_the_finding():
    _, found = check(research("POA"), dataset("HMB"), applicant=APPLICANT, today=TODAY)
    assert [(f.code, f.term, f.severity) for f in found] == [("use_not_permitted", code("POA"), "incompatible")]
    assert "HMB" in found[0].message and "population origins" in found[0].message


def test_ds_accepts_a_use_whose_diseases_are_all_the_datasets():
    limited = dataset("DS", diseases=(MELANOMA, LUNG_CANCER))
    assert verdict(research("DS", diseases=(MELANOMA,)), limited) == "compatible"
    assert verdict(research("DS", diseases=(LUNG_CANCER, MELANOMA)), limited) == "compatible"


def test_ds_sends_another_disease_to_review_as_the_hierarchy_is_not_shipped():
    assert findings(research("DS", diseases=(MELANOMA, CANCER)), dataset("DS", diseases=(MELANOMA,))) == [
        ("disease_not_matched", "needs_review")]


@pytest.mark.parametrize(("use_diseases", "dataset_diseases"), [((), ()), ((MELANOMA,), ()), ((), (MELANOMA,))])
def test_ds_without_a_disease_on_either_side_needs_review(use_diseases: tuple[str, ...],
                                                          dataset_diseases: tuple[str, ...]):
    assert findings(research("DS", diseases=use_diseases), dataset("DS", diseases=dataset_diseases)) == [
        ("disease_not_stated", "needs_review")]


@pytest.mark.parametrize("category", ["HMB", "GRU", "POA"])
def test_ds_refuses_research_beyond_disease(category: str):
    assert verdict(research(category, diseases=(MELANOMA,)), dataset("DS", diseases=(MELANOMA,))) == "incompatible"


def test_with_several_permissions_a_category_must_fit_one():
    either = dataset("DS", "POA", diseases=(MELANOMA,))
    assert verdict(research("POA"), either) == "compatible"
    assert verdict(research("DS", diseases=(MELANOMA,)), either) == "compatible"
    assert verdict(research("HMB"), either) == "incompatible"


def test_a_use_of_several_categories_needs_each_covered():
    assert verdict(research("HMB", "POA"), dataset("HMB")) == "incompatible"
    assert verdict(research("HMB", "POA"), dataset("HMB", "POA")) == "compatible"
    assert verdict(research("HMB", "POA"), dataset("GRU")) == "compatible"


# --- unknown and obsolete terms -------------------------------------------------------------------------------

def test_an_unknown_dataset_term_needs_review():
    assert findings(research("HMB"), dataset("GRU", UNKNOWN)) == [("unknown_term", "needs_review")]


def test_an_unknown_research_term_needs_review():
    assert findings(research(UNKNOWN), dataset("GRU")) == [("unknown_term", "needs_review")]


def test_a_refusal_is_only_review_when_an_unknown_dataset_term_may_be_a_wider_permission():
    assert findings(research("POA"), dataset("HMB", UNKNOWN)) == [
        ("unknown_term", "needs_review"), ("use_not_permitted", "needs_review")]


def test_a_dataset_of_unknown_terms_only_has_no_permission_to_match():
    assert findings(research("HMB"), dataset(UNKNOWN)) == [
        ("unknown_term", "needs_review"), ("no_permission_term", "needs_review")]


def test_a_modifier_breach_stays_incompatible_beside_an_unknown_term():
    assert verdict(research("HMB", commercial=True), dataset("GRU", "NCU", UNKNOWN)) == "incompatible"


def test_an_obsolete_term_needs_review_and_names_what_replaces_it():
    verdict_, found = check(research("HMB"), dataset("DUO:0000005"), applicant=APPLICANT, today=TODAY)
    assert verdict_ == "needs_review"
    assert [f.code for f in found] == ["obsolete_term", "no_permission_term"]
    assert "GRU (general research use) and CC (clinical care use)" in found[0].message


def test_a_modifier_named_as_the_research_category_needs_review():
    assert findings(research("HMB", "NCU"), dataset("GRU")) == [("not_a_research_category", "needs_review")]


# --- modifiers ------------------------------------------------------------------------------------------------

FUTURE, PAST = TODAY + timedelta(days=200), TODAY - timedelta(days=1)

# shorthand, the dataset's parameters, facts of a use that meets it, facts of a use that breaks it, and the
# finding that breach gives. Every use is of GRU (unless its facts say otherwise) on a GRU dataset carrying the
# modifier. US, MOR and RS are tested on their own below: they read the applicant, the day, or nothing.
MODIFIERS = [
    ("NPU", {}, {"commercial": True}, {"for_profit": True}, ("for_profit_not_allowed", "incompatible")),
    ("NCU", {}, {"for_profit": True}, {"commercial": True}, ("commercial_use_not_allowed", "incompatible")),
    ("NPUNCU", {}, {}, {"commercial": True}, ("commercial_use_not_allowed", "incompatible")),
    ("NPUNCU", {}, {}, {"for_profit": True}, ("for_profit_not_allowed", "incompatible")),
    ("IRB", {}, {"ethics_approval": True}, {}, ("ethics_approval_required", "incompatible")),
    ("GS", {"countries": ("FI", "SE")}, {"countries": ("FI",)}, {"countries": ("FI", "US")},
     ("country_not_allowed", "incompatible")),
    ("GS", {"countries": ("FI",)}, {"countries": ("FI",)}, {}, ("countries_not_stated", "needs_review")),
    ("PUB", {}, {"will_publish": True}, {}, ("publication_required", "incompatible")),
    ("COL", {}, {"will_collaborate": True}, {}, ("collaboration_required", "needs_review")),
    ("TS", {"until": FUTURE}, {"until": FUTURE}, {"until": FUTURE + timedelta(days=1)},
     ("time_limit_exceeded", "incompatible")),
    ("TS", {"until": FUTURE}, {"until": TODAY}, {}, ("time_limit_exceeded", "incompatible")),
    ("TS", {"until": TODAY}, {"until": TODAY}, {"until": FUTURE}, ("time_limit_exceeded", "incompatible")),
    ("RTN", {}, {"will_return_results": True}, {}, ("return_of_results_required", "incompatible")),
    ("PS", {"projects": ("P-1",)}, {"project_id": "P-1"}, {"project_id": "P-2"},
     ("project_not_allowed", "incompatible")),
    ("PS", {"projects": ("P-1",)}, {"project_id": "P-1"}, {}, ("project_not_allowed", "incompatible")),
    ("IS", {"institutions": ("THL",)}, {"institution": "THL"}, {"institution": "ACME"},
     ("institution_not_allowed", "incompatible")),
    ("NMDS", {}, {}, {"methods_development": True}, ("methods_development_not_allowed", "incompatible")),
    ("GSO", {}, {"genetic_studies": True}, {"genetic_studies": False}, ("genetic_studies_only", "incompatible")),
    ("NPOA", {}, {"terms": (code("HMB"),)}, {"terms": (code("POA"),)},
     ("population_research_not_allowed", "incompatible")),
]


@pytest.mark.parametrize(("modifier", "parameters", "meets", "breaks", "expected"), MODIFIERS)
def test_a_modifier_passes_a_use_that_meets_it_and_flags_one_that_breaks_it(
        modifier: str, parameters: dict[str, Any], meets: dict[str, Any], breaks: dict[str, Any],
        expected: tuple[str, str]):
    conditions = dataset("GRU", modifier, **parameters)
    meeting, breaking = (ResearchUse(**{"terms": (code("GRU"),), **facts}) for facts in (meets, breaks))
    assert check(meeting, conditions, applicant=APPLICANT, today=TODAY) == ("compatible", ())
    assert findings(breaking, conditions) == [expected]


def test_every_restricting_modifier_of_the_release_has_a_rule_under_test():
    tested = {modifier for modifier, *_ in MODIFIERS} | {"US", "RS", "MOR"}
    modifiers = {t.shorthand for t in TERMS if t.kind == "modifier" and not t.obsolete}
    assert modifiers - tested == {"CC"}  # CC widens what a dataset allows; it restricts nothing


def test_a_finding_names_the_modifier_it_is_about():
    _, found = check(research("GRU", commercial=True), dataset("GRU", "NCU"), applicant=APPLICANT, today=TODAY)
    assert [(f.code, f.term) for f in found] == [("commercial_use_not_allowed", code("NCU"))]
    assert found[0].message == "The dataset is for non-commercial use only, and this use is commercial."


def test_us_admits_only_the_named_users():
    named = dataset("GRU", "US", users=(APPLICANT, "researcher-8"))
    assert check(research("GRU"), named, applicant=APPLICANT, today=TODAY) == ("compatible", ())
    _, found = check(research("GRU"), named, applicant="stranger", today=TODAY)
    assert [(f.code, f.severity) for f in found] == [("user_not_allowed", "incompatible")]


@pytest.mark.parametrize(("modifier", "code_"), [
    ("US", "users_not_stated"), ("PS", "projects_not_stated"), ("IS", "institutions_not_stated"),
    ("GS", "countries_not_stated"), ("TS", "time_limit_not_stated"), ("MOR", "moratorium_date_not_stated"),
])
def test_a_modifier_without_its_parameter_needs_review(modifier: str, code_: str):
    facts = {"project_id": "P-1", "institution": "THL", "countries": ("FI",), "until": TODAY}
    assert findings(research("GRU", **facts), dataset("GRU", modifier)) == [(code_, "needs_review")]


def test_ts_refuses_once_the_datasets_time_limit_has_passed():
    assert findings(research("GRU", until=PAST), dataset("GRU", "TS", until=PAST)) == [
        ("time_limit_exceeded", "incompatible")]


def test_a_moratorium_to_come_is_advice_that_leaves_the_verdict_compatible():
    found = check(research("GRU"), dataset("GRU", "MOR", moratorium_until=FUTURE), applicant=APPLICANT, today=TODAY)
    assert found[0] == "compatible"
    assert [(f.code, f.severity) for f in found[1]] == [("moratorium", "info")]
    assert str(FUTURE) in found[1][0].message


def test_research_specific_restrictions_always_go_to_a_human():
    assert findings(research("GRU"), dataset("GRU", "RS")) == [("research_specific_restrictions", "needs_review")]


def test_clinical_care_restricts_nothing():
    assert check(research("GRU"), dataset("GRU", "CC"), applicant=APPLICANT, today=TODAY) == ("compatible", ())


def test_breaches_of_several_modifiers_are_all_reported_in_the_datasets_order():
    conditions = dataset("GRU", "PUB", "IRB", "NCU")
    assert [c for c, _ in findings(research("GRU", commercial=True), conditions)] == [
        "publication_required", "ethics_approval_required", "commercial_use_not_allowed"]


def test_permission_and_modifier_findings_come_together():
    assert findings(research("POA", commercial=True), dataset("HMB", "NCU")) == [
        ("use_not_permitted", "incompatible"), ("commercial_use_not_allowed", "incompatible")]


def test_needs_review_gives_way_to_incompatible():
    assert verdict(research("GRU", commercial=True), dataset("GRU", "RS", "NCU")) == "incompatible"
    assert verdict(research("GRU"), dataset("GRU", "RS", "NCU")) == "needs_review"


# --- the examples of the DUO documentation ----------------------------------------------------------------------
# From the README of github.com/EBISPOT/DUO at v2021-02-23, "How does querying work when using DUO?" and its
# table "Research Purpose to Query" (the DUOS algorithm's matches, by D. An, G. Rushton, A. Haessly, M. Cabili).

@pytest.mark.parametrize("conditions", [dataset("GRU"), dataset("HMB"), dataset("DS", diseases=(MELANOMA,))])
def test_readme_disease_research_sees_gru_hmb_and_its_own_disease(conditions: DataUseConditions):
    # "Disease focused research ... Any dataset with GRU=true Any dataset with HMB=true. Any dataset tagged to
    # this disease exactly." (the README's worked example is a researcher studying melanoma)
    assert verdict(research("DS", diseases=(MELANOMA,)), conditions) == "compatible"


def test_readme_a_subtype_fits_its_parent_disease_which_the_dac_confirms():
    # "A query for datasets consented for lung cancer research WILL retrieve datasets consented for cancer": the
    # MONDO hierarchy that shows lung cancer under cancer is not shipped, so the DAC is asked.
    assert findings(research("DS", diseases=(LUNG_CANCER,)), dataset("DS", diseases=(CANCER,))) == [
        ("disease_not_matched", "needs_review")]


def test_readme_a_parent_disease_does_not_fit_a_subtype_dataset():
    # "A query for datasets consented for cancer research WILL NOT retrieve datasets consented for lung cancer".
    assert verdict(research("DS", diseases=(CANCER,)), dataset("DS", diseases=(LUNG_CANCER,))) != "compatible"


def test_readme_methods_research_sees_datasets_without_nmds_or_with_nmds_and_its_disease():
    # "Methods development/Validation study: Any dataset where NMDS is false Any dataset where NMDS is true AND
    # DS-X match"
    methods = research("DS", diseases=(MELANOMA,), methods_development=True)
    assert verdict(methods, dataset("GRU")) == "compatible"
    assert verdict(methods, dataset("HMB", "NMDS")) == "incompatible"
    assert verdict(methods, dataset("DS", "NMDS", diseases=(MELANOMA,))) == "compatible"
    assert verdict(methods, dataset("DS", "NMDS", diseases=(CANCER,))) == "incompatible"


def test_readme_ancestry_research_sees_gru_datasets():
    # "Study population origins or ancestry: Any dataset tagged with GRU"; HMB's definition excludes it ("does not
    # include the study of population origins or ancestry").
    assert verdict(research("POA"), dataset("GRU")) == "compatible"
    assert verdict(research("POA"), dataset("HMB")) == "incompatible"


def test_readme_commercial_research_sees_datasets_without_npu_and_ncu():
    # "Commercial purpose/by a commercial entity: Any dataset where NPU and NCU are both false"
    company = research("HMB", commercial=True, for_profit=True)
    assert verdict(company, dataset("GRU")) == "compatible"
    assert verdict(company, dataset("GRU", "NPU")) == "incompatible"
    assert verdict(company, dataset("GRU", "NCU")) == "incompatible"


def test_npu_and_ncu_separate_who_uses_from_what_for():
    # DUO issue #55 split NPUNCU into NPU (by a not-for-profit organisation) and NCU (non-commercial use): a
    # company's non-commercial research passes NCU, a non-profit's commercial use passes NPU.
    assert verdict(research("HMB", for_profit=True), dataset("GRU", "NCU")) == "compatible"
    assert verdict(research("HMB", commercial=True), dataset("GRU", "NPU")) == "compatible"


# --- check_all ------------------------------------------------------------------------------------------------

def test_check_all_gives_a_verdict_per_dataset_in_order():
    verdicts = check_all(research("POA"), {"GDI-FI-DATASET-2": dataset("HMB"), "GDI-FI-DATASET-1": dataset("GRU")},
                         applicant=APPLICANT, today=TODAY)
    assert [(v.dataset_id, v.verdict) for v in verdicts] == [
        ("GDI-FI-DATASET-2", "incompatible"), ("GDI-FI-DATASET-1", "compatible")]
    assert all(isinstance(v, DatasetVerdict) for v in verdicts)


# --- properties -----------------------------------------------------------------------------------------------

PERMISSIONS = [t.code for t in TERMS if t.kind == "permission" and not t.obsolete]
MODIFIER_CODES = [t.code for t in TERMS if t.kind == "modifier" and not t.obsolete]
RANK = {"compatible": 0, "needs_review": 1, "incompatible": 2}
DISEASES = st.lists(st.sampled_from([MELANOMA, CANCER, LUNG_CANCER]), max_size=2, unique=True).map(tuple)
COUNTRIES = st.lists(st.sampled_from(["FI", "SE", "NO", "US"]), max_size=2, unique=True).map(tuple)
DATES = st.none() | st.dates(min_value=TODAY - timedelta(days=30), max_value=TODAY + timedelta(days=30))
NAMES = st.lists(st.sampled_from([APPLICANT, "P-1", "THL", "other"]), max_size=2, unique=True).map(tuple)


def uses(categories: st.SearchStrategy[str]) -> st.SearchStrategy[ResearchUse]:
    return st.builds(
        ResearchUse, terms=st.lists(categories, min_size=1, max_size=3).map(tuple), diseases=DISEASES,
        commercial=st.booleans(), for_profit=st.booleans(), ethics_approval=st.booleans(), countries=COUNTRIES,
        until=DATES, will_publish=st.booleans(), will_collaborate=st.booleans(), will_return_results=st.booleans(),
        methods_development=st.booleans(), genetic_studies=st.booleans(),
        project_id=st.none() | st.sampled_from(["P-1", "P-2"]), institution=st.none() | st.sampled_from(["THL"]))


def datasets(first: st.SearchStrategy[str], others: st.SearchStrategy[str]) -> st.SearchStrategy[DataUseConditions]:
    return st.builds(
        lambda head, tail, **parameters: DataUseConditions(terms=(head, *tail), **parameters),
        first, st.lists(others, max_size=4), diseases=DISEASES, countries=COUNTRIES, until=DATES,
        moratorium_until=DATES, users=NAMES, projects=NAMES, institutions=NAMES)


ANY_CODE = st.sampled_from([t.code for t in TERMS]) | st.from_regex(r"\ADUO:[0-9]{7}\Z")


@given(uses(st.sampled_from(PERMISSIONS)))
def test_nres_alone_accepts_every_use(use: ResearchUse):
    assert check(use, dataset("NRES"), applicant=APPLICANT, today=TODAY) == ("compatible", ())


@given(uses(st.sampled_from(PERMISSIONS)), datasets(st.sampled_from(PERMISSIONS), st.sampled_from(MODIFIER_CODES)),
       st.sampled_from(MODIFIER_CODES))
def test_adding_a_modifier_never_makes_a_verdict_milder(use: ResearchUse, conditions: DataUseConditions, extra: str):
    stricter = conditions.model_copy(update={"terms": (*conditions.terms, extra)})
    assert RANK[verdict(use, stricter)] >= RANK[verdict(use, conditions)]


# Each permission with one that accepts at least as much: its is_a parent, GRU for POA, and NRES for all.
WIDER = [("DUO:0000007", "DUO:0000006"), ("DUO:0000006", "DUO:0000042"), ("DUO:0000011", "DUO:0000042"),
         *((permission, "DUO:0000004") for permission in PERMISSIONS)]


# NMDS is left out: the README lets methods research through NMDS only with a DS disease match, so DS + NMDS can
# accept a methods use that HMB + NMDS refuses.
@given(uses(st.sampled_from(PERMISSIONS)), st.sampled_from(WIDER),
       datasets(st.just("DUO:0000004"), st.sampled_from([m for m in MODIFIER_CODES if m != code("NMDS")])))
def test_a_wider_permission_accepts_what_a_narrower_one_does(use: ResearchUse, pair: tuple[str, str],
                                                             conditions: DataUseConditions):
    narrow, wide = pair
    modifiers = conditions.terms[1:]
    as_narrow = conditions.model_copy(update={"terms": (narrow, *modifiers)})
    as_wide = conditions.model_copy(update={"terms": (wide, *modifiers)})
    assert RANK[verdict(use, as_wide)] <= RANK[verdict(use, as_narrow)]


@given(uses(ANY_CODE), datasets(ANY_CODE, ANY_CODE), st.text(max_size=5),
       st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_check_never_raises_and_its_verdict_follows_its_findings(use: ResearchUse, conditions: DataUseConditions,
                                                                 applicant: str, today: date):
    result, found = check(use, conditions, applicant=applicant, today=today)
    assert all(isinstance(f, Finding) for f in found)
    worst = max((RANK.get(f.severity, 0) for f in found), default=0)
    assert RANK[result] == worst
