"""``genomebus fetch``: a researcher downloads an archived object, a region of it, or a Crypt4GH copy.

DRS gives the object (its name, size, SHA-256 and access methods) and a short-lived URL for its
bytes; htsget gives a region. The token (``--token`` or ``GENOMEBUS_TOKEN``) is needed for
controlled datasets, not for public ones. Nothing half-downloaded is ever left: the bytes go to
``<file>.part``, which becomes the file only once verified, and is removed otherwise.

Exit codes (``genomebus --help``): 2 bad input or an existing file (nothing was fetched), 4 no such
object or access method, 5 refused by the gateway (401: no or an expired token; 403: no grant;
the line says which), 6 the gateway does not answer, 1 bytes that are not the DRS record's
(checksum or size: the partial file was removed), 130 interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from genomebus.cli import DEFAULT_DATA_DIR, DataDir, ExitCode, fail, out, run, say, settings_for, to_terminal

TokenOpt = Annotated[str | None, typer.Option("--token", envvar="GENOMEBUS_TOKEN", show_envvar=True,
                                              help="Your bearer token (`genomebus token issue` in the local "
                                                   "profile); not needed for a public dataset")]


def fetch(
    object_id: Annotated[str, typer.Argument(help="The DRS id (the file's accession, e.g. GDI-FI-FILE-00000001) "
                                                  "or the alias it was submitted with")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: the "
                                                                       "object's name, in this directory)")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only the records of chr:start-end, 1-based "
                                                                "and inclusive as in samtools (chr alone: the "
                                                                "whole reference), over htsget")] = None,
    crypt4gh_key: Annotated[Path | None, typer.Option("--crypt4gh-key", help="Your Crypt4GH public key file "
                                                                             "(crypt4gh-keygen --pk): receive a "
                                                                             "copy encrypted for it")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists")] = False,
    token: TokenOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Download an archived object (verified against its SHA-256), a region of it, or a Crypt4GH copy."""
    from genomebus.producers.fetch import InvalidRegion, parse_region, public_key_header

    if region is not None and crypt4gh_key is not None:
        raise fail("--region and --crypt4gh-key cannot be combined yet; fetch the region in plaintext, or the "
                   "whole object as a Crypt4GH copy", ExitCode.USAGE)
    try:
        wanted = parse_region(region) if region is not None else None
    except InvalidRegion as exc:
        raise fail(str(exc), ExitCode.USAGE) from exc
    key = _public_key(crypt4gh_key) if crypt4gh_key is not None else None
    if key is not None:
        try:
            public_key_header(key)
        except ValueError as exc:
            raise fail(f"--crypt4gh-key {crypt4gh_key}: {exc}; give the .pub file of `crypt4gh-keygen`",
                       ExitCode.USAGE) from exc
    if output is not None:
        _check_target(output, force)
    settings = settings_for(data_dir)
    what = f"{object_id}" + (f" {region}" if region else "")

    async def go() -> Any:
        from genomebus.producers.fetch import FetchClient

        async with FetchClient(settings, token) as client:
            obj = await client.drs_object(object_id)
            target = output or _default_name(obj, object_id, encrypted=key is not None, region=wanted)
            _check_target(target, force)
            with _progress(target) as progress:
                if wanted is not None:
                    return await client.region(object_id, wanted, target, progress=progress, overwrite=force,
                                               obj=obj)
                if key is not None:
                    return await client.crypt4gh(object_id, target, key, progress=progress, overwrite=force,
                                                 obj=obj)
                return await client.download(object_id, target, progress=progress, overwrite=force, obj=obj)

    fetched = _fetched(settings, go, what, token)
    if fetched.verified:
        say(f"{fetched.path}: {fetched.size:,} bytes, sha256 {fetched.sha256} (verified against the DRS record)")
    elif key is not None:
        say(f"{fetched.path}: {fetched.size:,} bytes, sha256 {fetched.sha256} (a Crypt4GH copy for your key; "
            "decrypt with `crypt4gh decrypt --sk`)")
    else:
        say(f"{fetched.path}: {fetched.size:,} bytes, sha256 {fetched.sha256} (the records of {region})")


def _fetched(settings: Any, go: Any, what: str, token: str | None) -> Any:
    """Run the download; every way it can end is one plain line with its exit code."""
    from genomebus.producers.fetch import FetchRefused, IntegrityError, InvalidRegion, NoSuchAccess

    try:
        return run(settings, go)
    except KeyboardInterrupt as exc:
        raise fail("interrupted: nothing was kept", ExitCode.INTERRUPTED) from exc
    except FetchRefused as exc:
        raise fail(_refusal(exc, what, token), _exit_for(exc.status)) from exc
    except IntegrityError as exc:
        raise fail(f"{exc}; the partial file was removed; fetch it again, and tell the node's operators if it "
                   "happens again", ExitCode.FAILURE) from exc
    except NoSuchAccess as exc:
        raise fail(str(exc), ExitCode.NOT_FOUND) from exc
    except (InvalidRegion, FileExistsError, IsADirectoryError) as exc:
        raise fail(_exists(exc) if isinstance(exc, FileExistsError) else str(exc), ExitCode.USAGE) from exc


def _refusal(exc: Any, what: str, token: str | None) -> str:
    if exc.status == 401:
        if not token:
            return (f"{what}: the dataset is not public and no token was given; get a token with "
                    "`genomebus token issue` (locally) or your node's login service, and pass it with --token "
                    "or GENOMEBUS_TOKEN")
        return (f"{what}: your token was refused ({exc.detail}); get a token with `genomebus token issue` "
                "(locally) or your node's login service")
    if exc.status == 403:
        if "genomebus access apply" in exc.detail:  # the node's own line already says what to do
            return f"{what}: {exc.detail}"
        return f"{what}: you have no grant for its dataset ({exc.detail}); apply with `genomebus access apply`"
    if exc.status == 404 and "reference" in exc.detail:  # the object was found: the region names no reference of it
        return (f"{what}: not found ({exc.detail}); give a reference the file has (as in its header, e.g. 20 or "
                "chr20)")
    if exc.status == 404:
        return (f"{what}: not found ({exc.detail}); give the file's accession (GDI-XX-FILE-...) or its alias, "
                "of a released dataset")
    if exc.status == 400:
        return f"{what}: {exc.detail}"
    if exc.status >= 500:
        return f"{what}: the gateway cannot serve it now ({exc.detail}); try again later"
    return f"{what}: the gateway answered {exc.status} ({exc.detail})"


def _exit_for(status: int) -> ExitCode:
    """As `genomebus access`: 401 and 403 are refusals (5), the line says which."""
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return {400: ExitCode.USAGE, 401: ExitCode.REFUSED, 403: ExitCode.REFUSED, 404: ExitCode.NOT_FOUND,
            410: ExitCode.NOT_FOUND, 416: ExitCode.USAGE}.get(status, ExitCode.FAILURE)


def _public_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"--crypt4gh-key {path}: cannot read it ({exc.strerror or exc}); give your public key file",
                   ExitCode.USAGE) from exc


_SUFFIXES = (".vcf.gz", ".bcf", ".bam", ".cram")


def _default_name(obj: dict[str, Any], object_id: str, *, encrypted: bool, region: Any = None) -> Path:
    """The object's own name (never a path: a name with a slash keeps its last part), in this directory.

    A region's records are named after the region too (``HG02102.21_1000-2000.vcf.gz``), so they are
    never taken for the whole file.
    """
    name = Path(str(obj.get("name") or "")).name or object_id.replace("/", "_")
    if region is not None:
        suffix = next((s for s in _SUFFIXES if name.endswith(s)), "")
        label = str(region).replace(":", "_").replace("{", "").replace("}", "").replace("/", "_")
        name = f"{name[:len(name) - len(suffix)]}.{label}{suffix}"
    return Path(name + ".c4gh" if encrypted else name)


def _check_target(path: Path, force: bool) -> None:
    if path.is_dir():
        raise fail(f"{path} is a directory; give a file name with -o", ExitCode.USAGE)
    if path.exists() and not force:
        raise fail(_exists(FileExistsError(f"{path} exists")), ExitCode.USAGE)
    if not path.parent.is_dir():
        raise fail(f"{path.parent} is not a directory; create it or give another -o", ExitCode.USAGE)


def _exists(exc: FileExistsError) -> str:
    return f"{exc}; nothing was fetched; pass --force to overwrite it, or -o another file"


@contextlib.contextmanager
def _progress(path: Path) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on a terminal; nothing when stdout is a file or a pipe."""
    if not to_terminal():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=out()) as bar:
        task = bar.add_task(escape(path.name), total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
