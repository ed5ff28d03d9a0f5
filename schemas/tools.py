"""Processing: tools and workflows (GA4GH TRS 2) registered, versions approved for execution, withdrawn.

A tool is keyed by its id. The steward's commands (``genomebus.processing.commands``):
``tool.register_requested`` (a tool with one version; for a known tool, a new version),
``tool.approve_requested`` and ``tool.withdraw_requested`` (one version). The tool registry
(``consumers/tool_registry.py``) is the one place that decides them and publishes the facts
(``tool.registered``, ``tool.version_added``, ``tool.version_approved``, ``tool.version_withdrawn``)
or a ``processing.command_rejected`` with reasons.

A version is ``registered`` (readable through TRS, not runnable), ``approved`` (runnable at this node:
tasks and workflow runs may name its TRS URL) or ``withdrawn`` (readable, never runnable again).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import Field, model_validator

from genomebus.schemas.access import AsRoles
from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Sha256, _Value

ToolId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", examples=["variant-summary"],
                              description="The tool's id at this node (lower case, digits, . _ -)")]
VersionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", examples=["1.0.0"])]
FileType = Literal["PRIMARY_DESCRIPTOR", "SECONDARY_DESCRIPTOR", "TEST_FILE", "CONTAINERFILE", "OTHER"]
ToolClass = Literal["CommandLineTool", "Workflow"]
RelativePath = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,254}$",
                                    description="A relative path without '..'")]
MAX_FILE_BYTES = 1_048_576
VERSION_STATES = ("registered", "approved", "withdrawn")


class ToolFile(_Value):
    """One file of a version: its descriptor, a script it runs, a test parameter file."""

    path: RelativePath
    file_type: FileType
    content: Annotated[str, Field(max_length=MAX_FILE_BYTES)]
    sha256: Sha256

    @model_validator(mode="after")
    def _checksum_matches(self) -> ToolFile:
        if ".." in self.path.split("/") or "" in self.path.split("/"):
            raise ValueError(f"{self.path} is not a plain relative path (no '..', no empty part)")
        if hashlib.sha256(self.content.encode()).hexdigest() != self.sha256:
            raise ValueError(f"the sha256 of {self.path} does not match its content")
        return self

    @classmethod
    def of(cls, path: str, file_type: FileType, content: str) -> ToolFile:
        return cls(path=path, file_type=file_type, content=content,
                   sha256=hashlib.sha256(content.encode()).hexdigest())


class ToolVersionSpec(_Value):
    """A version as registered: its CWL descriptor and files, and the node runtime it runs in."""

    version_id: VersionId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    descriptor_type: Literal["CWL"] = "CWL"
    runtime: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$",
                                  description="The node-provided environment it runs in (docs/sandbox.md)")]
    authors: Annotated[tuple[str, ...], Field(max_length=50)] = ()
    files: Annotated[tuple[ToolFile, ...], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _one_primary_descriptor(self) -> ToolVersionSpec:
        primary = [f.path for f in self.files if f.file_type == "PRIMARY_DESCRIPTOR"]
        if len(primary) != 1:
            raise ValueError(f"a version needs exactly one PRIMARY_DESCRIPTOR file, not {len(primary)}")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("two files of the version have the same path")
        return self

    @property
    def primary_descriptor(self) -> ToolFile:
        return next(f for f in self.files if f.file_type == "PRIMARY_DESCRIPTOR")


class ToolDescription(_Value):
    tool_id: ToolId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    organization: Annotated[str, Field(min_length=1, max_length=200)]
    toolclass: ToolClass = "CommandLineTool"
    aliases: Annotated[tuple[str, ...], Field(max_length=20)] = ()


# -- commands -----------------------------------------------------------------------------------------


class ToolRegisterRequested(ToolDescription, EventModel):
    """A steward registers a tool with one version, or a new version of a known tool."""

    context = "processing.commands"
    type: Literal["tool.register_requested"] = "tool.register_requested"
    version: ToolVersionSpec
    as_roles: AsRoles = AsRoles()


class ToolApproveRequested(EventModel):
    """A steward approves a registered version for execution at this node."""

    context = "processing.commands"
    type: Literal["tool.approve_requested"] = "tool.approve_requested"
    tool_id: ToolId
    version_id: VersionId
    as_roles: AsRoles = AsRoles()


class ToolWithdrawRequested(EventModel):
    """A steward withdraws a version: it stays readable and is never run again."""

    context = "processing.commands"
    type: Literal["tool.withdraw_requested"] = "tool.withdraw_requested"
    tool_id: ToolId
    version_id: VersionId
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
    as_roles: AsRoles = AsRoles()


# -- facts ------------------------------------------------------------------------------------------------


class ToolRegistered(ToolDescription, EventModel):
    """A new tool, with its first version (``registered``: readable, not yet runnable)."""

    context = "processing"
    type: Literal["tool.registered"] = "tool.registered"
    version: ToolVersionSpec


class ToolVersionAdded(EventModel):
    context = "processing"
    type: Literal["tool.version_added"] = "tool.version_added"
    tool_id: ToolId
    version: ToolVersionSpec


class ToolVersionApproved(EventModel):
    """The version may run at this node: tasks and workflow runs may name its TRS URL."""

    context = "processing"
    type: Literal["tool.version_approved"] = "tool.version_approved"
    tool_id: ToolId
    version_id: VersionId


class ToolVersionWithdrawn(EventModel):
    context = "processing"
    type: Literal["tool.version_withdrawn"] = "tool.version_withdrawn"
    tool_id: ToolId
    version_id: VersionId
    reason: str


TOOL_COMMANDS = (ToolRegisterRequested, ToolApproveRequested, ToolWithdrawRequested)
TOOL_FACTS = (ToolRegistered, ToolVersionAdded, ToolVersionApproved, ToolVersionWithdrawn)
