"""Audit events: every decision of the enforcement point, allowed or denied (topic ``genomebus.audit``).

Published by the gateway before it answers; an access whose audit event cannot be written is
refused. They carry who (the user id, once verified), what (the resource, never a query's
content; for data reads also the object and the byte range or genomic region), the decision and
its reason code, and the grant that allowed it; the time is the envelope's. ``data_url`` is the
credential of a request made with a signed data URL (DRS access URL, htsget ticket URL). Keyed by the resource's dataset, so one dataset's accesses stay in order.
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
    credential: Literal["bearer", "passport", "visa", "none", "public", "data_url", "task"] = "none"
    issuer: str | None = Field(None, description="Who vouched for the grant: this node, or a central issuer")
    object_id: str | None = Field(None, max_length=200, description="The object read (DRS id), if one was named")
    byte_range: str | None = Field(None, max_length=1000,
                                   description="The bytes asked for, as an HTTP Range (`bytes=0-99`); none: all")
    region: str | None = Field(None, max_length=1000,
                               description="The genomic region asked for (htsget), e.g. `chr21:1000-2000`, `*`, "
                                           "`header`")


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
