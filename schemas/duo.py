"""The Data Use Ontology (DUO): the terms this node uses, their hierarchy, and the research-use check.

SKELETON: the models below are the contract other modules use; the term table and the rules of
``check`` are filled in by the DUO work (see tests/unit/test_duo.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DuoCode = Annotated[str, Field(pattern=r"^DUO:[0-9]{7}$", examples=["DUO:0000042"])]
DiseaseId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.-]+$", examples=["MONDO:0005148"])]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["FI"])]


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
    diseases: tuple[DiseaseId, ...] = ()
    commercial: bool = Field(False, description="The use is commercial")
    for_profit: bool = Field(False, description="The applicant's organisation is for profit")
    ethics_approval: bool = Field(False, description="An ethics (IRB/ERB) approval covers the research")
    countries: tuple[CountryCode, ...] = Field((), description="Where the data will be used")
    until: date | None = Field(None, description="When the research ends")
    will_publish: bool = False
    will_collaborate: bool = Field(False, description="Agrees to collaborate with the data's primary study")
    will_return_results: bool = Field(False, description="Agrees to return derived data to the resource")
    methods_development: bool = Field(False, description="The research develops methods or software")
    genetic_studies: bool = Field(True, description="The research is a genetic study")
    project_id: str | None = None
    institution: str | None = None


class Finding(_Value):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    term: DuoCode | None = None
    message: str


class DatasetVerdict(_Value):
    dataset_id: str
    verdict: Literal["compatible", "incompatible", "needs_review"]
    findings: tuple[Finding, ...] = ()


DUO_VERSION = "unset"


def check(use: ResearchUse, conditions: DataUseConditions, *, applicant: str, today: date) -> tuple[str, tuple[Finding, ...]]:
    """(verdict, findings) of a research use against one dataset's conditions. Pure."""
    raise NotImplementedError
