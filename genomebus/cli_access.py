"""``genomebus token``, ``genomebus keys`` and ``genomebus access``: identities, visa keys, applications.

Access commands go through the gateway with a bearer token (``--token`` or ``GENOMEBUS_TOKEN``):
the gateway verifies it, publishes the command and answers with the decider's outcome. A refusal
is one plain line (and the reasons as a table) with the exit code of its kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
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
    shown,
    table,
)
from genomebus.infra.settings import Settings

token_app = typer.Typer(help="Login tokens and visas of the local profile's development issuers.",
                        no_args_is_help=True)
keys_app = typer.Typer(help="The node's visa signing keys.", no_args_is_help=True)
access_app = typer.Typer(help="Data access: apply, submit, decide, veto, revoke, close; list, show, grants, "
                              "passport. Every command needs a token (--token or GENOMEBUS_TOKEN).",
                         no_args_is_help=True)

ROLES = ("researcher", "dac_member", "steward", "auditor", "operator", "output_checker")
_DURATION = re.compile(r"^([0-9]+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

Token = Annotated[str, typer.Option("--token", envvar="GENOMEBUS_TOKEN", show_envvar=True,
                                    help="Your bearer token (`genomebus token issue` in the local profile)")]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="The dataset id")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why, in words (recorded on the log)")]
AppArg = Annotated[str, typer.Argument(help="The application id")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


def duration(text: str) -> int:
    """Seconds of ``90``, ``30m``, ``1h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


# -- tokens and keys ------------------------------------------------------------------------------------


@token_app.command("issue")
def token_issue(
    sub: Annotated[str, typer.Option("--sub", help="The user's id (the token's subject)")],
    role: Annotated[list[str] | None, typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLES)}")] = None,
    dac: Annotated[list[str] | None, typer.Option("--dac", help="A DAC the user is a member of (repeatable)")] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 30m, 1h, 7d")] = "1h",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print a login token of the development issuer (local profile only; production refuses it)."""
    from genomebus.infra.visas import ensure_dev_issuers, issue_dev_token

    roles = list(dict.fromkeys(role or ["researcher"]))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise fail(f"unknown role {unknown[0]!r}; choose from {', '.join(ROLES)}", ExitCode.USAGE)
    if "dac_member" in roles and not dac:
        raise fail("--role dac_member needs --dac DAC_ID (the committee)", ExitCode.USAGE)
    settings = _local(data_dir)
    claims = [r for r in roles if r not in ("dac_member", "steward")]
    claims += [f"steward:{settings.node_id}"] if "steward" in roles else []
    claims += [f"dac_member:{d}" for d in dac or ()]
    ensure_dev_issuers(settings)
    say(issue_dev_token(settings, sub=sub, roles=claims, ttl_s=duration(ttl)))


@token_app.command("visa")
def token_visa(
    sub: Annotated[str, typer.Option("--sub", help="The user the central access service granted")],
    dataset: DatasetOpt,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 30m, 1h, 7d")] = "1h",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print a ControlledAccessGrants visa of the development central access service (local profile only)."""
    from genomebus.infra.visas import ensure_dev_issuers, issue_dev_visa

    settings = _local(data_dir)
    ensure_dev_issuers(settings)
    say(issue_dev_visa(settings, sub=sub, dataset_id=dataset, ttl_s=duration(ttl)))


@keys_app.command("rotate-visa")
def keys_rotate_visa(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Add a new visa signing key; the previous one is still served until the next rotation."""
    from genomebus.infra.visas import rotate_visa_keys

    settings = settings_for(data_dir)
    kid = rotate_visa_keys(settings.visa_keys_path)
    say(f"new visa key {kid} signs from now; restart the gateway (`genomebus up`) to serve it")


def _local(data_dir: Path) -> Settings:
    settings = settings_for(data_dir)
    if settings.profile != "local":
        raise fail("the development issuers exist in the local profile only; production tokens come from the "
                   "node's login service", ExitCode.USAGE)
    if not data_dir.is_dir():
        raise fail(f"no data directory {data_dir}; start a node with `genomebus up --data-dir {data_dir}`",
                   ExitCode.UNAVAILABLE)
    return settings


# -- applications ---------------------------------------------------------------------------------------


@access_app.command("apply")
def access_apply(
    token: Token,
    dataset: Annotated[list[str], typer.Option("--dataset", help="A dataset to apply for (repeatable)")],
    title: Annotated[str, typer.Option("--title", help="The project's title")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the data will be used for")],
    use: Annotated[list[str], typer.Option("--use", help="DUO term of the research, e.g. DUO:0000006 (HMB) "
                                                         "(repeatable)")],
    disease: Annotated[list[str] | None, typer.Option("--disease", help="Disease (MONDO id) of a DS use")] = None,
    country: Annotated[list[str] | None, typer.Option("--country", help="Where the data is used (ISO code)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="When the research ends (YYYY-MM-DD)")] = None,
    ethics: Annotated[bool, typer.Option("--ethics-approval", help="An ethics approval covers it")] = False,
    commercial: Annotated[bool, typer.Option("--commercial", help="The use is commercial")] = False,
    for_profit: Annotated[bool, typer.Option("--for-profit", help="Your organisation is for profit")] = False,
    publish: Annotated[bool, typer.Option("--will-publish", help="Results will be published")] = False,
    collaborate: Annotated[bool, typer.Option("--will-collaborate", help="Will collaborate with the study")] = False,
    return_results: Annotated[bool, typer.Option("--will-return-results",
                                                 help="Will return derived data to the resource")] = False,
    institution: Annotated[str | None, typer.Option("--institution", help="Your institution (for IS)")] = None,
    project: Annotated[str | None, typer.Option("--project", help="The project's id")] = None,
    collaborator: Annotated[list[str] | None, typer.Option("--collaborator", help="A collaborator's user id")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Open an application (a draft) for released datasets; then `genomebus access submit`."""
    research_use = {"terms": use, "diseases": disease or [], "countries": country or [], "until": until,
                    "ethics_approval": ethics, "commercial": commercial, "for_profit": for_profit,
                    "will_publish": publish, "will_collaborate": collaborate,
                    "will_return_results": return_results, "institution": institution, "project_id": project}
    _check_use(research_use)
    app = _access(data_dir, token, lambda c: c.apply(dataset, project_title=title, purpose=purpose,
                                                     research_use=research_use, collaborators=collaborator),
                  "apply")
    _show_application(app, as_json, f"application {app['id']} opened (draft); submit it with "
                                    f"`genomebus access submit {app['id']}`")


@access_app.command("submit")
def access_submit(token: Token, application: AppArg,
                  as_json: JsonOpt = False,
                  data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Submit a draft (or resubmit after a return): its research use is checked against each dataset's DUO terms."""
    application = _application_id(application)
    app = _access(data_dir, token, lambda c: c.submit(application), f"submit {application}")
    _show_application(app, as_json, f"application {application} submitted (round {app['round']})")


@access_app.command("decide")
def access_decide(
    token: Token, application: AppArg, dataset: DatasetOpt,
    decision: Annotated[str, typer.Option("--decision", help="approve, reject or return")],
    grant_for: Annotated[str | None, typer.Option("--for", help="Approve for this long: 90d, 365d")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Approve until this date (YYYY-MM-DD)")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (needed to reject or return)")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Decide one dataset of an application as a member of its DAC."""
    application = _application_id(application)
    if decision not in ("approve", "reject", "return"):
        raise fail(f"--decision {decision!r}: choose approve, reject or return", ExitCode.USAGE)
    expires_at = None
    if decision == "approve":
        if (grant_for is None) == (expires is None):
            raise fail("an approval needs exactly one of --for (e.g. 365d) and --expires YYYY-MM-DD", ExitCode.USAGE)
        expires_at = (datetime.now(UTC) + timedelta(seconds=duration(grant_for)) if grant_for
                      else datetime.combine(_date(expires), datetime.min.time(), UTC))
    elif not reason:
        raise fail(f"to {decision}, say why with --reason", ExitCode.USAGE)
    app = _access(data_dir, token, lambda c: c.decide(application, dataset, decision, expires_at=expires_at,
                                                      reason=reason), f"{decision} {dataset}")
    _show_application(app, as_json, f"{dataset}: {_state_of(app, dataset)}")


@access_app.command("veto")
def access_veto(
    token: Token, dataset: DatasetOpt, reason: ReasonOpt,
    application: Annotated[str | None, typer.Argument(help="The application (none: a central grant, with --user)")]
    = None,
    user: Annotated[str | None, typer.Option("--user", help="The user a central access service granted")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Veto access to a dataset of this node (steward): an application's, or a central grant's (--user)."""
    if (application is None) == (user is None):
        raise fail("give the application id, or --user for a grant given by a central access service",
                   ExitCode.USAGE)
    if application is not None:
        application = _application_id(application)
    if application is not None:
        app = _access(data_dir, token, lambda c: c.veto(application, dataset, reason), f"veto {dataset}")
        say(f"{dataset}: {_state_of(app, dataset)} in application {application}")
    else:
        _access(data_dir, token, lambda c: c.veto_central(dataset, user, reason), f"veto {dataset}")
        say(f"{dataset}: vetoed for {user} (whatever a central access service grants)")


@access_app.command("revoke")
def access_revoke(token: Token, application: AppArg, dataset: DatasetOpt, reason: ReasonOpt,
                  data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """End an active grant before its expiry (the dataset's DAC or a steward)."""
    application = _application_id(application)
    app = _access(data_dir, token, lambda c: c.revoke(application, dataset, reason), f"revoke {dataset}")
    say(f"{dataset}: {_state_of(app, dataset)} in application {application}")


@access_app.command("close")
def access_close(token: Token, application: AppArg,
                 reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded on the log)")] = None,
                 data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Close an application (the applicant or a steward); its active grants end."""
    application = _application_id(application)
    app = _access(data_dir, token, lambda c: c.close(application, reason), f"close {application}")
    say(f"application {application} {app['state']}")


@access_app.command("list")
def access_list(token: Token, as_json: JsonOpt = False,
                limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 100,
                data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The applications you may see (yours; your DACs'; all for a steward or auditor)."""
    page = _access(data_dir, token, lambda c: c.applications(limit=limit), "list applications")
    if as_json:
        say(json.dumps(page, indent=2))
        return
    t = table(f"{page['total']} application(s)", "id", "applicant", "state", "datasets", "title")
    for a in page["applications"]:
        add_row(t, shown(a["id"], 8), a["applicant"], a["state"],
                ", ".join(f"{d['dataset_id']} {d['state']}" for d in a["datasets"]), a["project_title"])
    out().print(t)


@access_app.command("show")
def access_show(token: Token, application: AppArg, as_json: JsonOpt = False,
                data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """One application: each dataset's state and DUO verdict, and its history."""
    application = _application_id(application)
    app = _access(data_dir, token, lambda c: c.application(application), f"show {application}")
    _show_application(app, as_json, None)


@access_app.command("grants")
def access_grants(token: Token,
                  dataset: Annotated[str | None, typer.Option("--dataset", help="A dataset's grants (its DAC, "
                                                                                 "stewards, auditors)")] = None,
                  as_json: JsonOpt = False,
                  data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Your active grants, or a dataset's."""
    grants = _access(data_dir, token, lambda c: c.grants(dataset), "list grants")
    if as_json:
        say(json.dumps(grants, indent=2))
        return
    t = table(f"{len(grants)} active grant(s)", "grant", "dataset", "user", "DAC", "expires")
    for g in grants:
        add_row(t, shown(g["grant_id"], 8), g["dataset_id"], g["user_id"], g["dac_id"], g["expires_at"])
    out().print(t)


@access_app.command("passport")
def access_passport(token: Token, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Print your passport: a signed JWT with a visa for each of your active grants."""
    say(_access(data_dir, token, lambda c: c.passport(), "get a passport"))


# -- helpers --------------------------------------------------------------------------------------------


def _check_use(research_use: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from genomebus.schemas.duo import ResearchUse

    try:
        ResearchUse.model_validate(research_use)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"research use {'.'.join(map(str, first['loc']))}: {first['msg']}; nothing was sent",
                   ExitCode.USAGE) from exc


def _date(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError as exc:
        raise fail(f"{text!r} is not a date (YYYY-MM-DD)", ExitCode.USAGE) from exc


def _application_id(text: str) -> str:
    """An application id as the node gives them (a UUID), or one plain line; nothing is sent."""
    from uuid import UUID

    try:
        return str(UUID(text))
    except ValueError:
        raise fail(f"{text!r} is not an application id (a UUID such as 1afa038c-c6ae-4904-9940-8d87b463c1e3); "
                   "`genomebus access list` shows yours", ExitCode.USAGE) from None


def _access(data_dir: Path, token: str, call: Callable[[Any], Coroutine[Any, Any, Any]], what: str,
            client_class: Any = None) -> Any:
    from genomebus.producers.access import AccessClient, AccessRefused, StillPending

    settings = settings_for(data_dir)

    async def go() -> Any:
        async with (client_class or AccessClient)(settings, token) as client:
            return await call(client)

    try:
        return run(settings, go)
    except StillPending as exc:
        raise fail(f"{exc}; see it later with `genomebus access list`", ExitCode.UNAVAILABLE) from exc
    except AccessRefused as exc:
        if exc.reasons:
            reasons = table(None, "reason", "detail")
            for r in exc.reasons:
                add_row(reasons, r.get("code"), r.get("message"))
            out(stderr=True).print(reasons)
        raise fail(_refusal_line(exc, what), _exit_for(exc.status)) from exc


def _refusal_line(exc: Any, what: str) -> str:
    if exc.status == 401:
        return f"{what}: {exc.detail}; get a new token (`genomebus token issue` locally)"
    if exc.status == 403:
        return f"{what}: not allowed ({exc.detail}); ask someone with the right role"
    if exc.status == 404:
        return f"{what}: {exc.detail}; `genomebus access list` shows what you may see"
    if exc.status == 409:
        return f"{what}: refused ({exc.detail})" + (f"; it is {exc.state}" if exc.state else "")
    if exc.status == 503:
        return f"{what}: the node is not ready ({exc.detail}); try again, or check `genomebus status`"
    return f"{what}: {exc.detail}"


def _exit_for(status: int) -> ExitCode:
    return {400: ExitCode.USAGE, 401: ExitCode.REFUSED, 403: ExitCode.REFUSED, 404: ExitCode.NOT_FOUND,
            409: ExitCode.REFUSED, 503: ExitCode.UNAVAILABLE}.get(status, ExitCode.FAILURE)


def _state_of(app: dict[str, Any], dataset: str) -> str:
    return next((d["state"] for d in app.get("datasets", ()) if d["dataset_id"] == dataset), "?")


def _show_application(app: dict[str, Any], as_json: bool, headline: str | None) -> None:
    if as_json:
        say(json.dumps(app, indent=2))
        return
    if headline:
        say(headline)
    say(f"{app['id']}  {app['project_title']}  ({app['state']}, round {app['round']}, by {app['applicant']})")
    t = table(None, "dataset", "DAC", "state", "DUO check", "findings", "expires")
    for d in app["datasets"]:
        add_row(t, d["dataset_id"], d["dac_id"], d["state"], d.get("verdict") or "",
                "; ".join(f"{f['code']}" for f in d.get("findings") or ()), d.get("expires_at") or "")
    out().print(t)
    if app.get("history"):
        h = table(None, "time", "event", "by")
        for e in app["history"]:
            add_row(h, e["time"], e["type"], e["actor"])
        out().print(h)
