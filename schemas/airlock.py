"""Processing: the output airlock — a finished task's outputs checked, reviewed by two checkers, released.

An output request is keyed by its task (``task_id``): one request per finished task, for all of its
outputs. Who decides what:

- The airlock worker (``consumers/airlock.py``) is the one place that decides a request. On
  ``result.ready`` it reads each quarantined output and runs the automatic disclosure checks
  (``consumers/airlock_checks.py``, the rules in ``docs/airlock.md``): ``output.checked`` with a
  verdict per file. A file that is individual-level genomic data (``block``) or that fails a
  disclosure rule (``fail``) ends the request there: ``output.rejected`` by ``worker:airlock``.
- ``output.approve_requested`` and ``output.reject_requested`` are commands
  (``genomebus.processing.commands``), published by the gateway as the verified checker.
  Only someone with the ``output_checker`` role, never the task's owner, may decide; each
  checker approves once. ``output.approved`` records each approval; the second distinct one
  (``airlock_checkers_required``) leads to ``output.released`` once the files are copied to the
  outputs bucket, each with the DRS id under which its owner alone may read it. Any reject ends
  the request (``output.rejected`` with the checker's reason). A refused command is a
  ``processing.command_rejected``.

A request's state: ``checking`` (result ready) → ``review`` (checked, awaiting checkers) →
``released`` | ``rejected``. Nothing in quarantine is served by DRS; only released outputs are.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from genomebus.schemas.access import AsRoles, UserId
from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Sha256, _Value

TaskId = Annotated[str, Field(pattern=r"^task-[0-9a-f]{32}$", description="The task whose outputs these are")]
OutputObjectId = Annotated[str, Field(pattern=r"^output-[0-9a-f]{32}$",
                                      description="The DRS id of a released output")]
Verdict = Literal["pass", "flag", "fail", "block"]
"""``pass``: no rule applies; ``flag``: a checker must look (zeros, an unknown type); ``fail``: a
disclosure rule is broken (small cell, dominance, p-ratio); ``block``: individual-level genomic data."""
ReasonText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class RuleResult(_Value):
    """One rule's finding on one file."""

    rule: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["threshold", "vcf_genotypes"])]
    verdict: Verdict
    message: Annotated[str, Field(max_length=2000)]
    cells: Annotated[tuple[str, ...], Field(max_length=50, description="Where (row:column), the first 50")] = ()


class CheckedFile(_Value):
    """The automatic checks of one output file."""

    path: str
    kind: Annotated[str, Field(description="What the content sniffed as: table, vcf, bam, cram, bcf, fastq, sam, "
                                           "text, binary, empty")]
    verdict: Verdict
    findings: tuple[RuleResult, ...] = ()


class OutputChecked(EventModel):
    """The automatic checks of a finished task's outputs (ACRO's rules on tables; genomic data blocked)."""

    context = "processing"
    type: Literal["output.checked"] = "output.checked"
    task_id: TaskId
    owner: UserId
    files: tuple[CheckedFile, ...]
    verdict: Literal["review", "rejected"] = Field(
        description="review: checkers decide (flags shown); rejected: a file is blocked or fails a rule")


class OutputApproveRequested(EventModel):
    """An output checker approves a request (``POST /airlock/requests/{task_id}/approve``)."""

    context = "processing.commands"
    type: Literal["output.approve_requested"] = "output.approve_requested"
    task_id: TaskId
    note: Annotated[str | None, Field(max_length=2000)] = None
    as_roles: AsRoles = AsRoles()


class OutputRejectRequested(EventModel):
    """An output checker rejects a request, with a reason the researcher sees."""

    context = "processing.commands"
    type: Literal["output.reject_requested"] = "output.reject_requested"
    task_id: TaskId
    reason: ReasonText
    as_roles: AsRoles = AsRoles()


class OutputApproved(EventModel):
    """One checker's approval; ``approvals`` counts the distinct checkers so far."""

    context = "processing"
    type: Literal["output.approved"] = "output.approved"
    task_id: TaskId
    by: UserId
    approvals: Annotated[int, Field(ge=1)]
    required: Annotated[int, Field(ge=1)]
    note: str | None = None


class OutputRejected(EventModel):
    """The request ends unreleased: a checker's reject, or the automatic checks' (``by`` ``worker:airlock``)."""

    context = "processing"
    type: Literal["output.rejected"] = "output.rejected"
    task_id: TaskId
    by: str
    reason: ReasonText


class ReleasedOutput(_Value):
    """A released output file: where it is kept (Crypt4GH for the archive key) and its DRS id."""

    object_id: OutputObjectId
    path: str
    name: str
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256
    bucket: str
    key: str
    encrypted_size: Annotated[int, Field(ge=0)]


class OutputReleased(EventModel):
    """Two checkers approved: the outputs are in the outputs bucket, readable by their owner through DRS."""

    context = "processing"
    type: Literal["output.released"] = "output.released"
    task_id: TaskId
    owner: UserId
    approved_by: tuple[UserId, ...]
    outputs: tuple[ReleasedOutput, ...]


AIRLOCK_COMMANDS = (OutputApproveRequested, OutputRejectRequested)
AIRLOCK_FACTS = (OutputChecked, OutputApproved, OutputRejected, OutputReleased)
