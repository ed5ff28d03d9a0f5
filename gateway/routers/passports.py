"""The node as a visa issuer (GA4GH Passport v1.2): its keys, a user's visas, a signed passport.

For every active grant (read from the ``access`` read model at the moment of asking) the node
issues a ``ControlledAccessGrants`` visa signed with its current visa key; ``exp`` is the grant's
expiry at the latest (and at most ``visa_ttl_max_s`` away). A visa is only a proof carried
elsewhere: the enforcement point still checks the grant behind a visa of this node when it is
presented, so a revocation takes effect at once.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from genomebus.gateway.deps import PoolDep, PrincipalDep, SettingsDep, VisaKeysDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra.readmodels import access
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys, issue_passport, issue_visa

router = APIRouter(tags=["passports"])

JWKS_JSON = "application/jwk-set+json"


class JwkSetResponse(JSONResponse):
    media_type = JWKS_JSON


class Permissions(BaseModel):
    ga4gh_passport_v1: list[str]


class Passport(BaseModel):
    passport: str = Field(description="The passport, a JWS (vnd.ga4gh.passport+jwt) signed by this node")
    visas: int = Field(description="How many visas it carries: one per active grant")
    expires_at: datetime


@router.get("/.well-known/jwks.json", response_class=JwkSetResponse, responses={
    200: {"description": "The node's visa signing keys (public parts): the current one and, during a rotation, "
                         "the previous one", "content": {JWKS_JSON: {"schema": {"type": "object"}}}}})
async def jwks(keys: VisaKeysDep) -> Response:
    return JwkSetResponse(keys.public_jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/permissions/{user_id}", response_model=Permissions, responses=problem_responses(401, 403, 503))
async def permissions(user_id: Annotated[str, Path(min_length=1, max_length=255)], principal: PrincipalDep,
                      pool: PoolDep, keys: VisaKeysDep, settings: SettingsDep) -> Permissions:
    """A user's ControlledAccessGrants visas (REMS-compatible); the user themselves or a trusted service only."""
    if principal.user_id != user_id and principal.user_id not in settings.trusted_services:
        raise Problem(403, "not-allowed", "only the user themselves or a trusted service may read a user's visas")
    return Permissions(ga4gh_passport_v1=await _visas(pool, keys, settings, user_id))


@router.get("/passport", response_model=Passport, responses=problem_responses(401, 503))
async def passport(principal: PrincipalDep, pool: PoolDep, keys: VisaKeysDep, settings: SettingsDep) -> JSONResponse:
    """A passport signed by this node with a visa for each of the caller's active grants (for DRS-style POSTs)."""
    visas = await _visas(pool, keys, settings, principal.user_id)
    token = issue_passport(keys, settings, user_id=principal.user_id, visas=visas)
    expires = datetime.fromtimestamp(_claims(token)["exp"], UTC)
    body = Passport(passport=token, visas=len(visas), expires_at=expires)
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def _visas(pool: Any, keys: VisaKeys, settings: Settings, user_id: str) -> list[str]:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        grants = await access.grants(conn, user_id=user_id, now=now, active_only=True)
    return [issue_visa(keys, settings, user_id=user_id, dataset_id=g["dataset_id"], grant_id=str(g["grant_id"]),
                       asserted=g["decided_at"], expires_at=g["expires_at"], now=now) for g in grants]
