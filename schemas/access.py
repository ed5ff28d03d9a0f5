"""Data Access Management events: applications, their DUO check, DAC decisions, vetoes, grants ending.

Commands (``genomebus.access.commands``) are what people ask for, through the gateway, which has
verified who they are and with which roles (``AsRoles``); the access decider
(``consumers/access_decider.py``) is the one place that decides them, and publishes the facts on
``genomebus.access`` or an ``access.command_rejected`` with reasons and the current state.
Commands and facts about an application are keyed by its id; a veto of a grant given elsewhere
(a central access service's visa, no application here) is keyed by ``<dataset>/<user>``.

Grants: each dataset approved in an application is a grant, ``grant_id`` = ``grant_id_of(application,
dataset)``, active from ``access.decided`` (approved) until its expiry, a veto, a revocation or
the application's closing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from genomebus.schemas.base import EventModel
from genomebus.schemas.duo import DatasetVerdict, ResearchUse
from genomebus.schemas.reception import DacId, DatasetId, Reason, _Value

UserId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s]+$",
                              description="The caller's `sub` at a trusted issuer (pseudonymous)")]

_GRANTS = uuid.UUID("6f0d3c55-2a57-4c1b-9d5e-1a0e2c7b9a41")


def grant_id_of(application_id: UUID, dataset_id: str) -> UUID:
    """The grant a dataset's approval in an application becomes: the same id for ever."""
    return uuid.uuid5(_GRANTS, f"{application_id}/{dataset_id}")


def veto_subject(dataset_id: str, user_id: str) -> str:
    """Kafka key of a veto without an application here (a grant given by a central access service)."""
    return f"{dataset_id}/{user_id}"


class AsRoles(_Value):
    """Who asked, as the gateway verified it from their token: their roles at the moment of asking."""

    researcher: bool = False
    steward: bool = Field(False, description="A data steward of this node")
    dacs: tuple[DacId, ...] = Field((), description="The DACs the asker is a member of")
    output_checker: bool = Field(False, description="May review the airlock's output requests")
    operator: bool = Field(False, description="An operator of this node")


class ApplicationText(_Value):
    project_title: Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
    purpose: Annotated[str, Field(min_length=1, max_length=10000, pattern=r"\S",
                                  description="What the data will be used for, in words")]
    research_use: ResearchUse
    collaborators: Annotated[tuple[UserId, ...], Field(max_length=100)] = ()


# -- commands -----------------------------------------------------------------------------------------


class AccessApplyRequested(ApplicationText, EventModel):
    """A researcher opens an application (a draft until submitted) for one or more released datasets."""

    context = "access.commands"
    type: Literal["access.apply_requested"] = "access.apply_requested"
    application_id: UUID
    datasets: Annotated[tuple[DatasetId, ...], Field(min_length=1, max_length=50)]
    as_roles: AsRoles = AsRoles()


class AccessSubmitRequested(EventModel):
    """The applicant submits (or, after a return, resubmits, optionally with a changed text)."""

    context = "access.commands"
    type: Literal["access.submit_requested"] = "access.submit_requested"
    application_id: UUID
    changes: ApplicationText | None = None
    as_roles: AsRoles = AsRoles()


class AccessDecideRequested(EventModel):
    """A member of a dataset's DAC decides that dataset in an application."""

    context = "access.commands"
    type: Literal["access.decide_requested"] = "access.decide_requested"
    application_id: UUID
    dataset_id: DatasetId
    decision: Literal["approve", "reject", "return"]
    expires_at: datetime | None = Field(None, description="Required to approve: when the grant ends")
    reason: Annotated[str | None, Field(max_length=2000)] = None
    as_roles: AsRoles = AsRoles()


class AccessVetoRequested(EventModel):
    """A steward of this node vetoes access to one of its datasets: an application's, or a central grant."""

    context = "access.commands"
    type: Literal["access.veto_requested"] = "access.veto_requested"
    dataset_id: DatasetId
    user_id: UserId
    application_id: UUID | None = Field(None, description="The application whose approval is vetoed; none for a "
                                                          "grant given by a central access service")
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
    as_roles: AsRoles = AsRoles()


class AccessRevokeRequested(EventModel):
    """The dataset's DAC or a steward ends an active grant before its expiry."""

    context = "access.commands"
    type: Literal["access.revoke_requested"] = "access.revoke_requested"
    application_id: UUID
    dataset_id: DatasetId
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
    as_roles: AsRoles = AsRoles()


class AccessExpireRequested(EventModel):
    """The access timer says a grant reached its expiry (its id is derived from the grant: it fires once)."""

    context = "access.commands"
    type: Literal["access.expire_requested"] = "access.expire_requested"
    application_id: UUID
    dataset_id: DatasetId


class AccessCloseRequested(EventModel):
    """The applicant (or a steward) closes an application; its active grants end."""

    context = "access.commands"
    type: Literal["access.close_requested"] = "access.close_requested"
    application_id: UUID
    reason: Annotated[str | None, Field(max_length=2000)] = None
    as_roles: AsRoles = AsRoles()


ACCESS_COMMANDS = (AccessApplyRequested, AccessSubmitRequested, AccessDecideRequested, AccessVetoRequested,
                   AccessRevokeRequested, AccessExpireRequested, AccessCloseRequested)


# -- facts ---------------------------------------------------------------------------------------------


class DatasetDac(_Value):
    dataset_id: DatasetId
    dac_id: DacId


class AccessRequested(ApplicationText, EventModel):
    """An application was opened (a draft); each dataset with the DAC that decides it."""

    context = "access"
    type: Literal["access.requested"] = "access.requested"
    application_id: UUID
    applicant: UserId
    datasets: Annotated[tuple[DatasetDac, ...], Field(min_length=1)]


class AccessSubmitted(ApplicationText, EventModel):
    """The application as submitted for decision (``round`` 1, then 2, 3 ... after each return)."""

    context = "access"
    type: Literal["access.submitted"] = "access.submitted"
    application_id: UUID
    round: Annotated[int, Field(ge=1)]
    pending: Annotated[tuple[DatasetId, ...], Field(description="The datasets now awaiting their DAC")]


class AccessChecked(EventModel):
    """The research use checked against each pending dataset's DUO conditions: advice for its DAC."""

    context = "access"
    type: Literal["access.checked"] = "access.checked"
    application_id: UUID
    round: Annotated[int, Field(ge=1)]
    verdicts: tuple[DatasetVerdict, ...]
    duo_version: str = Field(description="The DUO release whose terms the check used")


class AccessDecided(EventModel):
    """A dataset's DAC decided it: approved (a grant, until ``expires_at``), rejected, or returned for changes."""

    context = "access"
    type: Literal["access.decided"] = "access.decided"
    application_id: UUID
    dataset_id: DatasetId
    dac_id: DacId
    decision: Literal["approved", "rejected", "returned"]
    grant_id: UUID | None = Field(None, description="For an approval: the grant's id")
    expires_at: datetime | None = None
    reason: str | None = None


class AccessVetoed(EventModel):
    """This node's steward vetoed a user's access to one of its datasets; it overrides any approval."""

    context = "access"
    type: Literal["access.vetoed"] = "access.vetoed"
    dataset_id: DatasetId
    user_id: UserId
    application_id: UUID | None = None
    grant_id: UUID | None = None
    reason: str


class AccessRevoked(EventModel):
    context = "access"
    type: Literal["access.revoked"] = "access.revoked"
    application_id: UUID
    dataset_id: DatasetId
    grant_id: UUID
    reason: str


class AccessExpired(EventModel):
    context = "access"
    type: Literal["access.expired"] = "access.expired"
    application_id: UUID
    dataset_id: DatasetId
    grant_id: UUID


class AccessClosed(EventModel):
    """The application is closed; the grants it still had active ended with it (``ended``)."""

    context = "access"
    type: Literal["access.closed"] = "access.closed"
    application_id: UUID
    reason: str | None = None
    ended: tuple[UUID, ...] = Field((), description="Grants that were active and end now")


class AccessCommandRejected(EventModel):
    """The access decider refused a command; ``state`` is the application's (or grant's) state then."""

    context = "access"
    type: Literal["access.command_rejected"] = "access.command_rejected"
    aggregate_id: Annotated[str, Field(min_length=1)]
    command_id: UUID
    command_type: str
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]
    state: str | None = Field(None, description="The application's state, or the dataset's in it, when decided")


ACCESS_FACTS = (AccessRequested, AccessSubmitted, AccessChecked, AccessDecided, AccessVetoed, AccessRevoked,
                AccessExpired, AccessClosed, AccessCommandRejected)
