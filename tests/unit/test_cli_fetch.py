"""`genomebus fetch` against the fake gateway of test_fetch.py: one line at the end, one plain line per error.

The node is a data directory whose state names this process as its supervisor (so the CLI goes on
to the gateway), and ``httpx.AsyncClient`` is given the fake gateway's transport.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from genomebus.cli import ExitCode, app
from tests.unit.test_cli import assert_plain_error, running_node  # noqa: F401 - a fixture
from tests.unit.test_fetch import BAM, READER_KEY_FILE, TOKEN, VCF, FakeGateway

VCF_ID = "GDI-FI-FILE-00000001"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOMEBUS_TOKEN", raising=False)
    return CliRunner()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway()
    real = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real(transport=httpx.MockTransport(fake.answer), **kw))
    return fake


def fetch(runner: CliRunner, node: Path, *args: str, token: str | None = TOKEN):
    return runner.invoke(app, ["fetch", *args, "--data-dir", str(node), *(["--token", token] if token else [])])


def test_the_object_lands_under_its_name_verified_in_one_line(runner, running_node, gateway, tmp_path):
    result = fetch(runner, running_node, VCF_ID)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "calls.vcf.gz").read_bytes() == VCF
    # Piped: no progress bar, the whole digest, one line.
    assert result.stdout.splitlines() == [
        f"calls.vcf.gz: {len(VCF):,} bytes, sha256 {hashlib.sha256(VCF).hexdigest()} (verified against the DRS record)"]
    assert result.stderr == ""


def test_the_token_may_come_from_the_environment(runner, running_node, gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("GENOMEBUS_TOKEN", TOKEN)
    result = fetch(runner, running_node, VCF_ID, "-o", "mine.vcf.gz", token=None)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mine.vcf.gz").read_bytes() == VCF


def test_an_existing_file_is_never_overwritten_without_force(runner, running_node, gateway, tmp_path):
    (tmp_path / "calls.vcf.gz").write_bytes(b"mine")

    refused = fetch(runner, running_node, VCF_ID)
    assert_plain_error(refused, ExitCode.USAGE, "calls.vcf.gz exists; nothing was fetched; pass --force")
    assert (tmp_path / "calls.vcf.gz").read_bytes() == b"mine"
    assert [r.url.path for r in gateway.requests] == ["/ga4gh/drs/v1/objects/GDI-FI-FILE-00000001"]  # no data

    forced = fetch(runner, running_node, VCF_ID, "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "calls.vcf.gz").read_bytes() == VCF


def test_an_existing_output_named_with_o_is_refused_before_anything_is_sent(runner, running_node, gateway,
                                                                               tmp_path):
    (tmp_path / "out.vcf.gz").write_bytes(b"mine")
    assert_plain_error(fetch(runner, running_node, VCF_ID, "-o", "out.vcf.gz"), ExitCode.USAGE, "out.vcf.gz exists")
    assert_plain_error(fetch(runner, running_node, VCF_ID, "-o", "no/such/dir/x"), ExitCode.USAGE,
                       "no/such/dir is not a directory")
    assert gateway.requests == []


def test_a_checksum_mismatch_is_one_line_and_leaves_no_file(runner, running_node, gateway, tmp_path):
    gateway.corrupt = True
    result = fetch(runner, running_node, VCF_ID)
    assert_plain_error(result, ExitCode.FAILURE, "the SHA-256 of what was received is",
                       "the partial file was removed; fetch it again")
    assert not list(tmp_path.glob("calls.vcf.gz*"))


@pytest.mark.parametrize(("token", "code", "needles"), [
    (None, ExitCode.REFUSED, ("the dataset is not public and no token was given",
                              "get a token with `genomebus token issue`", "GENOMEBUS_TOKEN")),
    ("stale", ExitCode.REFUSED, ("your token was refused (the token has expired)",
                                 "get a token with `genomebus token issue`")),
    ("no-grant", ExitCode.REFUSED, ("you have no grant for its dataset (no grant for GDI-FI-DATASET-001)",
                                    "apply with `genomebus access apply`")),
])
def test_refusals_say_what_to_do_next(runner, running_node, gateway, tmp_path, token, code, needles):
    for extra in ([], ["--region", "chr1:1-10"]):
        result = fetch(runner, running_node, VCF_ID, *extra, token=token)
        assert_plain_error(result, code, *needles)
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("calls*"))


def test_an_unknown_object_is_not_found(runner, running_node, gateway):
    result = fetch(runner, running_node, "GDI-FI-FILE-00000404")
    assert_plain_error(result, ExitCode.NOT_FOUND, "GDI-FI-FILE-00000404: not found (no object GDI-FI-FILE-00000404)")


def test_a_gateway_that_does_not_answer_is_unavailable(runner, running_node, tmp_path):
    result = fetch(runner, running_node, VCF_ID)  # the node's gateway is 127.0.0.1:9: nobody listens
    assert_plain_error(result, ExitCode.UNAVAILABLE, "does not answer")


def test_a_region_is_written_and_said_as_asked(runner, running_node, gateway, tmp_path):
    result = fetch(runner, running_node, VCF_ID, "--region", "chr1:1000-2000", "-o", "r.vcf.gz")

    assert result.exit_code == 0, result.output
    written = (tmp_path / "r.vcf.gz").read_bytes()
    assert written == VCF[:5000] + b"\x1f\x8b"
    assert result.stdout.splitlines() == [
        f"r.vcf.gz: {len(written):,} bytes, sha256 {hashlib.sha256(written).hexdigest()} "
        "(the records of chr1:1000-2000)"]
    assert dict(gateway.requests[1].url.params) == {"referenceName": "chr1", "start": "999", "end": "2000",
                                                    "format": "VCF"}


def test_a_region_without_output_is_named_after_the_region(runner, running_node, gateway, tmp_path):
    result = fetch(runner, running_node, VCF_ID, "--region", "chr1:1000-2000")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "calls.chr1_1000-2000.vcf.gz").exists()
    assert not (tmp_path / "calls.vcf.gz").exists()  # never taken for the whole file


@pytest.mark.parametrize(("args", "needle"), [
    (["--region", "11:abc-def"], "must be numbers"),
    (["--region", "chr1:0-5"], "positions count from 1"),
    (["--region", "chr1:9-5"], "the end is before the start"),
    (["--region", "chr1:5-9", "--crypt4gh-key", "x.pub"], "cannot be combined"),
    (["--crypt4gh-key", "missing.pub"], "--crypt4gh-key missing.pub: cannot read it"),
    (["--crypt4gh-key", "{ssh}"], "not a Crypt4GH public key file"),
])
def test_bad_input_is_refused_before_anything_is_sent(runner, running_node, gateway, tmp_path, args, needle):
    (tmp_path / "ssh.pub").write_text("ssh-ed25519 AAAA me@host\n")
    result = fetch(runner, running_node, VCF_ID, *(a.format(ssh=tmp_path / "ssh.pub") for a in args))
    assert_plain_error(result, ExitCode.USAGE, needle)
    assert gateway.requests == []


def test_a_crypt4gh_copy_is_named_c4gh_and_said_so(runner, running_node, gateway, tmp_path):
    (tmp_path / "me.pub").write_bytes(READER_KEY_FILE)
    result = fetch(runner, running_node, "GDI-FI-FILE-00000002", "--crypt4gh-key", "me.pub")

    assert result.exit_code == 0, result.output
    copy = tmp_path / "reads.bam.c4gh"
    assert copy.read_bytes().startswith(b"crypt4gh") and copy.stat().st_size > len(BAM)
    assert result.stdout.startswith(f"reads.bam.c4gh: {copy.stat().st_size:,} bytes, sha256 ")
    assert "a Crypt4GH copy for your key" in result.stdout


def test_on_a_terminal_a_progress_bar_is_drawn(runner, running_node, gateway, tmp_path, monkeypatch):
    monkeypatch.setattr("genomebus.cli_fetch.to_terminal", lambda: True)
    result = fetch(runner, running_node, VCF_ID)
    assert result.exit_code == 0, result.output
    assert "calls.vcf.gz" in result.stdout.splitlines()[0] and "━" in result.stdout  # the bar, then the line
    assert result.stdout.splitlines()[-1].endswith("(verified against the DRS record)")


def test_fetch_is_listed_in_the_help(runner):
    result = runner.invoke(app, ["--help"])
    assert "fetch" in result.output
