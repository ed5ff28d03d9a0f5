"""The tool registry's decisions (a pure function), the tool folders of producers/examples, TRS URLs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from genomebus.consumers.tool_registry import decide
from genomebus.infra.readmodels.tools import parse_trs_url, trs_url
from genomebus.infra.settings import Settings
from genomebus.producers.tools import EXAMPLES, InvalidTool, load_tool
from genomebus.schemas.access import AsRoles
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.tools import (
    ToolApproveRequested,
    ToolFile,
    ToolRegistered,
    ToolVersionAdded,
    ToolVersionApproved,
    ToolVersionWithdrawn,
    ToolWithdrawRequested,
)

STEWARD = AsRoles(steward=True)
CID = uuid.uuid4()


def register(version: str = "1.0.0", **changes):
    command = load_tool(EXAMPLES / "variant-summary")
    spec = command.version.model_copy(update={"version_id": version, **changes})
    return command.model_copy(update={"version": spec})


def codes(facts) -> list[str]:
    assert len(facts) == 1 and isinstance(facts[0], ProcessingCommandRejected), facts
    return [r.code for r in facts[0].reasons]


@pytest.mark.parametrize("name", ["variant-summary", "genotype-dump", "net-probe"])
def test_every_example_tool_is_a_valid_registration(name: str) -> None:
    command = load_tool(EXAMPLES / name)
    assert command.tool_id == name and command.as_roles.steward
    assert command.version.primary_descriptor.path == f"{name}.cwl"
    assert command.version.runtime == "python-pysam"
    [fact] = decide(None, command, CID)
    assert isinstance(fact, ToolRegistered) and fact.version == command.version


def test_a_known_tool_gets_a_new_version_and_never_the_same_one_twice() -> None:
    assert isinstance(decide({"1.0.0": "approved"}, register("1.1.0"), CID)[0], ToolVersionAdded)
    assert codes(decide({"1.0.0": "withdrawn"}, register("1.0.0"), CID)) == ["version_exists"]


def test_a_version_needs_a_runtime_this_node_has_and_a_cwl_descriptor_of_its_class() -> None:
    assert codes(decide(None, register(runtime="docker-ubuntu"), CID)) == ["unknown_runtime"]
    command = register()
    bad = [f if f.file_type != "PRIMARY_DESCRIPTOR" else ToolFile.of(f.path, f.file_type, "cwlVersion: v1.2\n"
                                                                      "class: Workflow\n") for f in command.version.files]
    assert codes(decide(None, register(files=tuple(bad)), CID)) == ["bad_descriptor"]
    not_cwl = [f if f.file_type != "PRIMARY_DESCRIPTOR" else ToolFile.of(f.path, f.file_type, "{not: [yaml")
               for f in command.version.files]
    assert codes(decide(None, register(files=tuple(not_cwl)), CID)) == ["bad_descriptor"]


def test_approval_moves_only_a_registered_version() -> None:
    approve = ToolApproveRequested(tool_id="variant-summary", version_id="1.0.0", as_roles=STEWARD)
    assert decide({"1.0.0": "registered"}, approve, CID) == [ToolVersionApproved(tool_id="variant-summary",
                                                                                 version_id="1.0.0")]
    assert codes(decide({"1.0.0": "approved"}, approve, CID)) == ["already_approved"]
    assert codes(decide({"1.0.0": "withdrawn"}, approve, CID)) == ["version_withdrawn"]
    assert codes(decide({"2.0": "registered"}, approve, CID)) == ["unknown_version"]
    assert codes(decide(None, approve, CID)) == ["unknown_tool"]


def test_withdrawal_is_once_and_needs_a_reason() -> None:
    withdraw = ToolWithdrawRequested(tool_id="variant-summary", version_id="1.0.0", reason="a bug", as_roles=STEWARD)
    assert isinstance(decide({"1.0.0": "approved"}, withdraw, CID)[0], ToolVersionWithdrawn)
    assert isinstance(decide({"1.0.0": "registered"}, withdraw, CID)[0], ToolVersionWithdrawn)
    assert codes(decide({"1.0.0": "withdrawn"}, withdraw, CID)) == ["already_withdrawn"]
    with pytest.raises(ValidationError):
        ToolWithdrawRequested(tool_id="variant-summary", version_id="1.0.0", reason="  ", as_roles=STEWARD)


def test_only_a_steward_decides_tools() -> None:
    command = register().model_copy(update={"as_roles": AsRoles(researcher=True)})
    assert codes(decide(None, command, CID)) == ["not_steward"]
    approve = ToolApproveRequested(tool_id="variant-summary", version_id="1.0.0")
    assert codes(decide({"1.0.0": "registered"}, approve, CID)) == ["not_steward"]


@pytest.mark.parametrize("path", ["../evil.py", "/etc/passwd", "a//b", "a/../b"])
def test_a_tool_file_path_is_relative_and_plain(path: str) -> None:
    with pytest.raises(ValidationError):
        ToolFile.of(path, "OTHER", "x")


def test_a_tool_files_checksum_must_match_its_content() -> None:
    with pytest.raises(ValidationError, match="sha256"):
        ToolFile(path="a.py", file_type="OTHER", content="print(1)", sha256="0" * 64)


def test_a_broken_tool_folder_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidTool, match="no tool.json"):
        load_tool(tmp_path)
    (tmp_path / "tool.json").write_text(json.dumps({"id": "x", "primary_descriptor": "x.cwl"}))
    with pytest.raises(InvalidTool, match="not a file"):
        load_tool(tmp_path)
    (tmp_path / "x.cwl").write_text("cwlVersion: v1.2\nclass: CommandLineTool\n")
    with pytest.raises(InvalidTool, match="organization|name|version"):
        load_tool(tmp_path)
    (tmp_path / "data.bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidTool, match="not text"):
        load_tool(tmp_path)


def test_trs_urls_of_this_node_name_a_tool_version_and_others_do_not() -> None:
    settings = Settings(node_id="FI", gateway_public_url="https://fi.example.org")
    url = trs_url(settings, "variant-summary", "1.0.0")
    assert url == "https://fi.example.org/ga4gh/trs/v2/tools/variant-summary/versions/1.0.0"
    assert parse_trs_url(settings, url) == ("variant-summary", "1.0.0")
    assert parse_trs_url(settings, "trs://fi.example.org/variant-summary/1.0.0") == ("variant-summary", "1.0.0")
    for other in ("https://se.example.org/ga4gh/trs/v2/tools/variant-summary/versions/1.0.0",
                  "trs://se.example.org/variant-summary/1.0.0", "ubuntu:22.04", "docker://python:3.11",
                  "https://fi.example.org/ga4gh/trs/v2/tools/variant-summary", "file:///tool"):
        assert parse_trs_url(settings, other) is None, other
