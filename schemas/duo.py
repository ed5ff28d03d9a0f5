"""The Data Use Ontology (DUO): the terms this node uses, their hierarchy, and the check of a research use.

Source: DUO release 2021-02-23 (``http://purl.obolibrary.org/obo/duo/releases/2021-02-23/duo.owl``, tag
v2021-02-23 of github.com/EBISPOT/DUO). The ids, shorthands, labels and is_a parents of ``TERMS`` are copied
from that release's duo.owl and duo.csv; nothing is read or fetched at run time.

How ``check`` reads a dataset's conditions against a research use:

* Permissions say what research the data may serve. A dataset permission accepts a use's category when the
  category is that permission or one of its is_a descendants (GRU > HMB > DS). Two breadths come from the
  definitions, not from is_a: NRES ("no restriction") accepts every use, and GRU ("any research purpose")
  accepts POA, which DUO puts beside GRU rather than under it (the DUO README's matching table shows
  ancestry research finding GRU datasets). Each of the use's categories must fit one of the dataset's
  permissions.
* DS compares disease ids exactly. A use for a disease the dataset does not list is sent to review, not
  refused: the disease hierarchy (MONDO) is not shipped, and lung cancer research does fit a cancer dataset.
* Each restricting modifier has one rule in ``_RULES``: its term, its finding code, and a function of the
  use, the dataset's parameters, the applicant and the day. CC only widens what a dataset allows, so it has
  no rule. TS is read as an end date (``until``), where DUO speaks of a number of months.
* Unknown or obsolete terms on either side make the verdict ``needs_review``; a permission mismatch on a
  dataset with an unread term is only ``needs_review`` too, since that term may be a wider permission.

The verdict is advice to the data access committee (DAC), which decides: ``incompatible`` if any finding
is, else ``needs_review`` if any finding is, else ``compatible``. ``check`` is pure and never raises on
valid models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DuoCode = Annotated[str, Field(pattern=r"^DUO:[0-9]{7}$", examples=["DUO:0000042"])]
DiseaseId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.-]+$", examples=["MONDO:0005148"])]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["FI"])]
Verdict = Literal["compatible", "incompatible", "needs_review"]
Severity = Literal["incompatible", "needs_review", "info"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataUseParameters(_Value):
    """The values some of a dataset's DUO modifiers need (its disease for DS, its countries for GS, ...)."""

    diseases: tuple[DiseaseId, ...] = Field((), description="DS: the diseases the use must be about")
    countries: tuple[CountryCode, ...] = Field((), description="GS: where the data may be used")
    until: date | None = Field(None, description="TS: the use must end by this date")
    moratorium_until: date | None = Field(None, description="MOR: no publication before this date")
    users: tuple[str, ...] = Field((), description="US: the only users allowed")
    projects: tuple[str, ...] = Field((), description="PS: the only projects allowed")
    institutions: tuple[str, ...] = Field((), description="IS: the only institutions allowed")


class DataUseConditions(DataUseParameters):
    """A dataset's DUO conditions: its permission and modifier terms, with their parameters."""

    terms: Annotated[tuple[DuoCode, ...], Field(min_length=1)]


class ResearchUse(_Value):
    """What an applicant says their research is, in DUO terms and the facts modifiers are checked against."""

    terms: Annotated[tuple[DuoCode, ...], Field(min_length=1, description="The research's category, e.g. "
                                                 "DUO:0000007 (disease-specific) with `diseases`")]
    diseases: tuple[DiseaseId, ...] = Field((), description="DS: the diseases the research is about")
    commercial: bool = Field(False, description="The use is commercial")
    for_profit: bool = Field(False, description="The applicant's organisation is for profit")
    ethics_approval: bool = Field(False, description="An ethics (IRB/ERB) approval covers the research")
    countries: tuple[CountryCode, ...] = Field((), description="Where the data will be used")
    until: date | None = Field(None, description="When the research ends")
    will_publish: bool = Field(False, description="Agrees to make the results available to the scientific community")
    will_collaborate: bool = Field(False, description="Agrees to collaborate with the data's primary study")
    will_return_results: bool = Field(False, description="Agrees to return derived data to the resource")
    methods_development: bool = Field(False, description="The research develops methods or software")
    genetic_studies: bool = Field(True, description="The research is a genetic study")
    project_id: str | None = None
    institution: str | None = None


class Finding(_Value):
    """One thing the check found, for a DAC member to read: a machine-readable code and one plain sentence."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["commercial_use_not_allowed"])]
    term: DuoCode | None = Field(None, description="The DUO term the finding is about, if one")
    message: str
    severity: Severity = Field("needs_review", description="What the finding does to the verdict "
                                                          "(info: nothing)")


class DatasetVerdict(_Value):
    dataset_id: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()


class DuoTerm(_Value):
    """One DUO term as the release states it."""

    code: DuoCode
    shorthand: str
    label: str
    kind: Literal["permission", "modifier"]
    parent: DuoCode | None = Field(None, description="Its is_a parent among these terms; None when it sits "
                                                      "directly under DUO's root class for its kind")
    obsolete: bool = False
    replaced_by: tuple[DuoCode, ...] = ()


DUO_VERSION = "2021-02-23"

# code, shorthand, label, kind, is_a parent: as in duo.owl of DUO_VERSION. The top-level permissions sit under
# DUO:0000001 (data use permission), the modifiers under DUO:0000017 (data use modifier). NPOA's class IRI in that
# file is misspelt DUO_00000044 (eight digits); its oboInOwl:id and duo.csv say DUO:0000044, which is used here.
_CURRENT = (
    ("DUO:0000004", "NRES", "no restriction", "permission", None),
    ("DUO:0000042", "GRU", "general research use", "permission", None),
    ("DUO:0000006", "HMB", "health or medical or biomedical research", "permission", "DUO:0000042"),
    ("DUO:0000007", "DS", "disease specific research", "permission", "DUO:0000006"),
    ("DUO:0000011", "POA", "population origins or ancestry research only", "permission", None),
    ("DUO:0000012", "RS", "research specific restrictions", "modifier", None),
    ("DUO:0000015", "NMDS", "no general methods research", "modifier", None),
    ("DUO:0000016", "GSO", "genetic studies only", "modifier", None),
    ("DUO:0000018", "NPUNCU", "not for profit, non commercial use only", "modifier", None),
    ("DUO:0000019", "PUB", "publication required", "modifier", None),
    ("DUO:0000020", "COL", "collaboration required", "modifier", None),
    ("DUO:0000021", "IRB", "ethics approval required", "modifier", None),
    ("DUO:0000022", "GS", "geographical restriction", "modifier", None),
    ("DUO:0000024", "MOR", "publication moratorium", "modifier", None),
    ("DUO:0000025", "TS", "time limit on use", "modifier", None),
    ("DUO:0000026", "US", "user specific restriction", "modifier", None),
    ("DUO:0000027", "PS", "project specific restriction", "modifier", None),
    ("DUO:0000028", "IS", "institution specific restriction", "modifier", None),
    ("DUO:0000029", "RTN", "return to database or resource", "modifier", None),
    ("DUO:0000043", "CC", "clinical care use", "modifier", None),
    ("DUO:0000044", "NPOA", "population origins or ancestry research prohibited", "modifier", None),
    ("DUO:0000045", "NPU", "not for profit organisation use only", "modifier", "DUO:0000018"),
    ("DUO:0000046", "NCU", "non-commercial use only", "modifier", "DUO:0000018"),
)
# Obsolete in DUO_VERSION (owl:deprecated), with the terms that replace them: kept so that a dataset still
# tagged with one is recognised and sent to review rather than matched as if it were current.
_OBSOLETE = (
    ("DUO:0000005", "GRU-CC", "obsolete general research use and clinical care", "permission",
     ("DUO:0000042", "DUO:0000043")),
    ("DUO:0000014", "RU", "obsolete research use only", "modifier", ()),
)

TERMS: tuple[DuoTerm, ...] = (
    *(DuoTerm(code=code, shorthand=short, label=text, kind=kind, parent=parent)
      for code, short, text, kind, parent in _CURRENT),
    *(DuoTerm(code=code, shorthand=short, label=text, kind=kind, obsolete=True, replaced_by=replaced_by)
      for code, short, text, kind, replaced_by in _OBSOLETE),
)
_BY_CODE = {t.code: t for t in TERMS}
_BY_SHORTHAND = {t.shorthand: t for t in TERMS}


def lookup(code_or_shorthand: str) -> DuoTerm | None:
    """The term with this code (``DUO:0000042``) or shorthand (``GRU``), None if this release has none."""
    return _BY_CODE.get(code_or_shorthand) or _BY_SHORTHAND.get(code_or_shorthand)


def term(code_or_shorthand: str) -> DuoTerm:
    """Like ``lookup``, but an unknown code or shorthand is a KeyError."""
    found = lookup(code_or_shorthand)
    if found is None:
        raise KeyError(f"{code_or_shorthand!r} is not a term of DUO {DUO_VERSION} as this node ships it")
    return found


def is_known(code: str) -> bool:
    """Whether the code (or shorthand) is in the table, obsolete terms included."""
    return lookup(code) is not None


def label(code: str) -> str:
    """The term's label in DUO; KeyError for an unknown code."""
    return term(code).label


def ancestors(code: str) -> tuple[str, ...]:
    """The codes of the term's is_a ancestors among ``TERMS``, nearest first; () for a top-level or unknown term."""
    found, chain = lookup(code), []
    while found is not None and found.parent is not None:
        chain.append(found.parent)
        found = _BY_CODE[found.parent]
    return tuple(chain)


_NRES, _GRU, _DS, _POA = (term(shorthand).code for shorthand in ("NRES", "GRU", "DS", "POA"))
# What a permission accepts beyond its is_a descendants, by its definition (see the module docstring).
_ALSO_ACCEPTS = {_GRU: frozenset({_POA})}


def _accepts(permission: str, category: str) -> bool:
    if permission == _NRES:
        return True
    lineage = (category, *ancestors(category))
    return permission in lineage or bool(_ALSO_ACCEPTS.get(permission, frozenset()).intersection(lineage))


def _named(code: str) -> str:
    found = term(code)
    return f"{found.shorthand} ({found.label})"


@dataclass(frozen=True)
class _Case:
    """What a modifier rule reads."""

    use: ResearchUse
    conditions: DataUseConditions
    applicant: str
    today: date
    disease_matched: bool  # a DS permission accepted the use's diseases exactly (NMDS reads it)


@dataclass(frozen=True)
class _Breach:
    severity: Severity
    message: str
    code: str | None = None  # when the rule's usual code does not say it


@dataclass(frozen=True)
class _Rule:
    shorthand: str
    code: str
    check: Callable[[_Case], _Breach | None]


def _not_for_profit(case: _Case) -> _Breach | None:
    if case.use.for_profit:
        return _Breach("incompatible", "The dataset is for not-for-profit organisations only, "
                                       "and the applicant's organisation is for profit.")
    return None


def _non_commercial(case: _Case) -> _Breach | None:
    if case.use.commercial:
        return _Breach("incompatible", "The dataset is for non-commercial use only, and this use is commercial.")
    return None


def _not_for_profit_non_commercial(case: _Case) -> _Breach | None:
    if case.use.commercial:
        return _Breach("incompatible", "The dataset is for not-for-profit, non-commercial use only, "
                                       "and this use is commercial.")
    if case.use.for_profit:
        return _Breach("incompatible", "The dataset is for not-for-profit, non-commercial use only, "
                                       "and the applicant's organisation is for profit.", "for_profit_not_allowed")
    return None


def _ethics_approval(case: _Case) -> _Breach | None:
    if not case.use.ethics_approval:
        return _Breach("incompatible", "The dataset requires an ethics (IRB/ERB) approval of the research, "
                                       "and none is stated.")
    return None


def _region(case: _Case) -> _Breach | None:
    allowed = case.conditions.countries
    if not allowed:
        return _Breach("needs_review", "The dataset is limited to a geographical region but names no country.",
                       "countries_not_stated")
    region = ", ".join(allowed)
    if not case.use.countries:
        return _Breach("needs_review", f"The dataset may be used only in {region}, and the research does not say "
                                       "where it will use the data.", "countries_not_stated")
    outside = [country for country in case.use.countries if country not in allowed]
    if outside:
        return _Breach("incompatible", f"The dataset may be used only in {region}, not in {', '.join(outside)}.")
    return None


def _publication(case: _Case) -> _Breach | None:
    if not case.use.will_publish:
        return _Breach("incompatible", "The dataset requires the results to be made available to the scientific "
                                       "community, and the applicant does not agree to publish them.")
    return None


def _collaboration(case: _Case) -> _Breach | None:
    if not case.use.will_collaborate:
        return _Breach("needs_review", "The dataset requires collaboration with its primary study's investigators, "
                                       "and the applicant has not agreed to it.")
    return None


def _time_limit(case: _Case) -> _Breach | None:
    limit, end = case.conditions.until, case.use.until
    if limit is None:
        return _Breach("needs_review", "The dataset's use is limited in time, but its end date is not stated.",
                       "time_limit_not_stated")
    if limit < case.today:
        return _Breach("incompatible", f"The dataset could be used only until {limit}, which has passed.")
    if end is None:
        return _Breach("incompatible", f"The dataset may be used only until {limit}, and the research states "
                                       "no end date.")
    if end > limit:
        return _Breach("incompatible", f"The dataset may be used only until {limit}, and the research runs "
                                       f"until {end}.")
    return None


def _return_results(case: _Case) -> _Breach | None:
    if not case.use.will_return_results:
        return _Breach("incompatible", "The dataset requires derived or enriched data to be returned to it, "
                                       "and the applicant does not agree to return them.")
    return None


def _only_named(what: str, allowed: tuple[str, ...], value: str | None, unstated: str) -> _Breach | None:
    if not allowed:
        return _Breach("needs_review", f"The dataset is limited to approved {what}s but names none.", unstated)
    if value is None:
        return _Breach("incompatible", f"The dataset is limited to named {what}s, and the research names no {what}.")
    if value not in allowed:
        return _Breach("incompatible", f"The dataset is limited to named {what}s, and {what} {value!r} "
                                       "is not one of them.")
    return None


def _user(case: _Case) -> _Breach | None:
    return _only_named("user", case.conditions.users, case.applicant, "users_not_stated")


def _project(case: _Case) -> _Breach | None:
    return _only_named("project", case.conditions.projects, case.use.project_id, "projects_not_stated")


def _institution(case: _Case) -> _Breach | None:
    return _only_named("institution", case.conditions.institutions, case.use.institution, "institutions_not_stated")


def _methods(case: _Case) -> _Breach | None:
    # NMDS forbids methods research "outside the bounds of the other specified restrictions"; the DUO README's
    # matching table lets methods research through when NMDS comes with a matching DS disease.
    if case.use.methods_development and not case.disease_matched:
        return _Breach("incompatible", "The dataset does not allow methods development (e.g. software or "
                                       "algorithms) beyond a disease it is limited to, and this research does it.")
    return None


def _genetic(case: _Case) -> _Breach | None:
    if not case.use.genetic_studies:
        return _Breach("incompatible", "The dataset is for genetic studies only, and this research is not one.")
    return None


def _moratorium(case: _Case) -> _Breach | None:
    until = case.conditions.moratorium_until
    if until is None:
        return _Breach("needs_review", "The dataset has a publication moratorium, but its date is not stated.",
                       "moratorium_date_not_stated")
    if until > case.today:
        return _Breach("info", f"Results may not be published before {until}.")
    return None


def _research_specific(case: _Case) -> _Breach | None:
    return _Breach("needs_review", "The dataset is limited to certain research types in its own words, "
                                   "which a DAC member must read.")


def _no_population_research(case: _Case) -> _Breach | None:
    if any(_POA == code or _POA in ancestors(code) for code in case.use.terms):
        return _Breach("incompatible", "The dataset does not allow population origins or ancestry research, "
                                       "and this research is of that kind.")
    return None


# One rule per restricting modifier. CC has none: it widens what a dataset allows and never restricts a use.
_RULES = (
    _Rule("NPU", "for_profit_not_allowed", _not_for_profit),
    _Rule("NCU", "commercial_use_not_allowed", _non_commercial),
    _Rule("NPUNCU", "commercial_use_not_allowed", _not_for_profit_non_commercial),
    _Rule("IRB", "ethics_approval_required", _ethics_approval),
    _Rule("GS", "country_not_allowed", _region),
    _Rule("PUB", "publication_required", _publication),
    _Rule("COL", "collaboration_required", _collaboration),
    _Rule("TS", "time_limit_exceeded", _time_limit),
    _Rule("RTN", "return_of_results_required", _return_results),
    _Rule("US", "user_not_allowed", _user),
    _Rule("PS", "project_not_allowed", _project),
    _Rule("IS", "institution_not_allowed", _institution),
    _Rule("NMDS", "methods_development_not_allowed", _methods),
    _Rule("GSO", "genetic_studies_only", _genetic),
    _Rule("MOR", "moratorium", _moratorium),
    _Rule("RS", "research_specific_restrictions", _research_specific),
    _Rule("NPOA", "population_research_not_allowed", _no_population_research),
)
_RULE_FOR = {term(rule.shorthand).code: rule for rule in _RULES}


def _unread(codes: tuple[str, ...], side: str) -> list[Finding]:
    """Findings for the codes this release does not know or marks obsolete."""
    findings = []
    for code in codes:
        found = lookup(code)
        if found is None:
            findings.append(Finding(code="unknown_term", term=code, severity="needs_review",
                                    message=f"The {side} names {code}, which is not a term of DUO {DUO_VERSION}."))
        elif found.obsolete:
            instead = " and ".join(_named(c) for c in found.replaced_by) or "no replacement"
            findings.append(Finding(code="obsolete_term", term=code, severity="needs_review",
                                    message=f"The {side} names {found.shorthand} ({code}), obsolete in DUO "
                                            f"{DUO_VERSION}; it is replaced by {instead}."))
    return findings


@dataclass(frozen=True)
class _Fit:
    accepted: bool
    disease_matched: bool = False
    review: Finding | None = None


def _fit(permission: str, category: str, use: ResearchUse, conditions: DataUseConditions) -> _Fit:
    """How one dataset permission takes one of the use's categories."""
    if not _accepts(permission, category):
        return _Fit(False)
    if permission != _DS:
        return _Fit(True)
    if not conditions.diseases or not use.diseases:
        side = "the dataset" if not conditions.diseases else "the research"
        return _Fit(False, review=Finding(
            code="disease_not_stated", term=_DS, severity="needs_review",
            message=f"The dataset is limited to disease-specific research, and {side} names no disease."))
    others = [disease for disease in use.diseases if disease not in conditions.diseases]
    if others:
        return _Fit(False, review=Finding(
            code="disease_not_matched", term=_DS, severity="needs_review",
            message=f"The research is about {', '.join(others)}, not among the dataset's diseases "
                    f"({', '.join(conditions.diseases)}); the DAC judges whether it falls under them, as the "
                    "disease hierarchy is not shipped."))
    return _Fit(True, disease_matched=True)


def _permission_findings(use: ResearchUse, conditions: DataUseConditions, permissions: list[str],
                         certain: bool) -> tuple[bool, list[Finding]]:
    """(a DS disease matched exactly, findings) of the use's categories against the dataset's permissions."""
    if not permissions:
        return False, [Finding(code="no_permission_term", severity="needs_review",
                               message="The dataset names no current DUO permission term, so no research use "
                                       "can be matched to it.")]
    disease_matched, findings = False, []
    for category in dict.fromkeys(use.terms):
        found = lookup(category)
        if found is None or found.obsolete:
            continue  # reported by _unread
        if found.kind == "modifier":
            findings.append(Finding(code="not_a_research_category", term=category, severity="needs_review",
                                    message=f"The research names {_named(category)}, a condition on datasets "
                                            "rather than a kind of research."))
            continue
        fits = [_fit(permission, category, use, conditions) for permission in permissions]
        if any(fit.accepted for fit in fits):
            disease_matched = disease_matched or any(fit.disease_matched for fit in fits)
            continue
        reviews = [fit.review for fit in fits if fit.review is not None]
        if reviews:
            findings += reviews
            continue
        allowed = ", ".join(term(permission).shorthand for permission in permissions)
        findings.append(Finding(
            code="use_not_permitted", term=category, severity="incompatible" if certain else "needs_review",
            message=f"The dataset's permission ({allowed}) does not cover {_named(category)}"
                    + ("." if certain else ", unless one of its unrecognised terms does.")))
    return disease_matched, findings


def _verdict(findings: list[Finding]) -> Verdict:
    severities = {finding.severity for finding in findings}
    if "incompatible" in severities:
        return "incompatible"
    if "needs_review" in severities:
        return "needs_review"
    return "compatible"


def check(use: ResearchUse, conditions: DataUseConditions, *, applicant: str,
          today: date) -> tuple[Verdict, tuple[Finding, ...]]:
    """(verdict, findings) of a research use against one dataset's conditions: advice to its DAC. Pure.

    Findings come in this order: unread terms (dataset, then research), permissions, then the dataset's
    modifiers in the order the dataset lists them.
    """
    dataset_terms = tuple(dict.fromkeys(conditions.terms))
    unread = _unread(dataset_terms, "dataset")
    findings = [*unread, *_unread(tuple(dict.fromkeys(use.terms)), "research")]
    permissions = [code for code in dataset_terms
                   if (found := lookup(code)) is not None and not found.obsolete and found.kind == "permission"]
    disease_matched, found_by_permissions = _permission_findings(use, conditions, permissions, certain=not unread)
    findings += found_by_permissions
    case = _Case(use, conditions, applicant, today, disease_matched)
    for code in dataset_terms:
        if (rule := _RULE_FOR.get(code)) is not None and (breach := rule.check(case)) is not None:
            findings.append(Finding(code=breach.code or rule.code, term=code, severity=breach.severity,
                                    message=breach.message))
    return _verdict(findings), tuple(findings)


def check_all(use: ResearchUse, datasets: Mapping[str, DataUseConditions], *, applicant: str,
              today: date) -> tuple[DatasetVerdict, ...]:
    """``check`` for each dataset, in the mapping's order."""
    verdicts = []
    for dataset_id, conditions in datasets.items():
        verdict, findings = check(use, conditions, applicant=applicant, today=today)
        verdicts.append(DatasetVerdict(dataset_id=dataset_id, verdict=verdict, findings=findings))
    return tuple(verdicts)
