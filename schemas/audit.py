"""Audit events: every decision of the enforcement point, allowed or denied (topic ``genomebus.audit``).

Published by the gateway before it answers; an access whose audit event cannot be written is
refused. They carry who (the user id, once verified), what (the resource, never a query's
content), the decision and its reason code, and the grant that allowed it; the time is the
envelope's. Keyed by the resource's dataset, so one dataset's accesses stay in order.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from genomebus.schemas.base import EventModel

ReasonCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["grant_active", "no_grant"])]


class _Decision(EventModel):
    context = "audit"
    dataset_id: Annotated[str, Field(min_length=1, max_length=200, description="The dataset the resource belongs to")]
    user_id: str | None = Field(None, description="The verified user; null when no credential could be verified")
    resource: Annotated[str, Field(min_length=1, max_length=1000,
                                   description="Method and path of what was asked for, without the query")]
    reason: ReasonCode
    grant_id: str | None = Field(None, description="The grant (or central visa id) that allowed it")
    credential: Literal["bearer", "passport", "visa", "none", "public"] = "none"
    issuer: str | None = Field(None, description="Who vouched for the grant: this node, or a central issuer")


class DataAccessed(_Decision):
    """The enforcement point allowed an access to controlled (or public) data."""

    type: Literal["data.accessed"] = "data.accessed"
    decision: Literal["allow"] = "allow"


class DataAccessDenied(_Decision):
    """The enforcement point refused an access: who, to what, and why (``reason``)."""

    type: Literal["data.access_denied"] = "data.access_denied"
    decision: Literal["deny"] = "deny"
    status: int = Field(description="The HTTP status answered: 401, 403, 404 or 503")


AUDIT_EVENTS = (DataAccessed, DataAccessDenied)
