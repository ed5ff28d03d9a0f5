"""The scheduler's decisions (pure functions): admission with every reason, the audit of each input, cancels."""

from __future__ import annotations

import uuid

import pytest

from genomebus.consumers.scheduler import (
    InputFacts,
    NodeLimits,
    TaskFacts,
    decide_cancel,
    decide_task,
    object_id_of,
)
from genomebus.schemas.access import AsRoles
from genomebus.schemas.audit import DataAccessDenied, DataAccessed
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.tasks import TaskAccepted, TaskCancelAccepted, TaskCancelRequested, TaskRejected, TaskRequested

TOOL = "https://fi.example.org/ga4gh/trs/v2/tools/variant-summary/versions/1.0.0"
LIMITS = NodeLimits(cpu_cores=2, ram_gb=4, disk_gb=10, wall_s=3600, processes=64, inputs_bytes=10**9)
OBJECT = {"accession": "GDI-FI-FILE-00000007", "dataset_id": "GDI-FI-DATASET-001", "dataset_state": "released",
          "size": 1000, "sha256": "a" * 64}
GRANT = {"grant_id": uuid.uuid4()}
RUNNABLE = {"tool_id": "variant-summary", "version_id": "1.0.0", "runtime": "python-pysam", "files": []}


def task(*, inputs=None, outputs=None, resources=None, researcher=True, executors=None) -> TaskRequested:
    return TaskRequested(
        task_id="task-" + uuid.uuid4().hex, as_roles=AsRoles(researcher=researcher),
        spec={"inputs": inputs if inputs is not None else [{"url": "drs://fi/GDI-FI-FILE-00000007",
                                                            "path": "/work/in.vcf.gz"}],
              "outputs": outputs or [{"path": "/work/out.tsv"}], "resources": resources,
              "executors": executors or [{"image": TOOL, "command": ["python", "/tool/x.py"]}]})


def facts(*, tool=RUNNABLE, found=OBJECT, grant=GRANT, vetoed=False) -> TaskFacts:
    return TaskFacts(tools={TOOL: tool}, inputs=[InputFacts("/work/in.vcf.gz", "GDI-FI-FILE-00000007", found, grant,
                                                            vetoed)])


def reasons(events) -> list[str]:
    assert isinstance(events[0], TaskRejected), events
    return [r.code for r in events[0].reasons]


def test_a_granted_researcher_with_an_approved_tool_is_admitted_and_the_read_audited() -> None:
    events = decide_task(task(), "alice", facts(), LIMITS)
    accepted, audit = events
    assert isinstance(accepted, TaskAccepted) and accepted.owner == "alice"
    assert [(s.object_id, s.dataset_id, s.grant_id) for s in accepted.staged_inputs] == [
        ("GDI-FI-FILE-00000007", "GDI-FI-DATASET-001", GRANT["grant_id"])]
    assert accepted.tools[0].runtime == "python-pysam" and accepted.limits.cpu_cores == 1
    assert isinstance(audit, DataAccessed) and audit.credential == "task" and audit.user_id == "alice"
    assert audit.resource.endswith("input /work/in.vcf.gz") and audit.object_id == "GDI-FI-FILE-00000007"


@pytest.mark.parametrize("change, code, audited", [
    (dict(grant=None), "no_grant", "no_grant"),
    (dict(vetoed=True), "no_grant", "vetoed"),
    (dict(found={**OBJECT, "dataset_state": "withdrawn"}), "dataset_not_released", "dataset_not_released"),
    (dict(found=None), "unknown_object", None),
    (dict(tool="registered"), "tool_not_approved", "grant_active"),
    (dict(tool="withdrawn"), "tool_withdrawn", "grant_active"),
    (dict(tool=None), "unknown_tool", "grant_active"),
    (dict(tool={**RUNNABLE, "runtime": "docker"}), "unknown_runtime", "grant_active"),
])
def test_each_refusal_has_its_reason_and_each_named_object_its_audit(change, code, audited) -> None:
    events = decide_task(task(), "carol", facts(**change), LIMITS)
    assert code in reasons(events)
    assert [getattr(e, "reason", None) for e in events[1:]] == ([audited] if audited else [])
    if audited in ("no_grant", "vetoed", "dataset_not_released"):
        assert isinstance(events[1], DataAccessDenied) and events[1].status == 403


def test_every_reason_is_given_at_once() -> None:
    events = decide_task(task(researcher=False, resources={"cpu_cores": 8, "ram_gb": 64, "disk_gb": 100},
                              outputs=[{"path": "/etc/cron.d/x"}]), "eve", facts(grant=None, tool="registered"),
                         LIMITS)
    assert set(reasons(events)) == {"not_researcher", "tool_not_approved", "bad_path", "no_grant",
                                    "too_many_cpu_cores", "too_much_ram", "too_much_disk"}


@pytest.mark.parametrize("path", ["/etc/passwd", "/work/../etc/passwd", "/work", "/workx/out"])
def test_paths_must_be_inside_the_work_dir(path: str) -> None:
    assert "bad_path" in reasons(decide_task(task(outputs=[{"path": path}]), "alice", facts(), LIMITS))


def test_inline_inputs_need_no_grant_and_inputs_are_bounded() -> None:
    inline = task(inputs=[{"content": "hello", "path": "/work/hello.txt"}])
    assert isinstance(decide_task(inline, "alice", TaskFacts(tools={TOOL: RUNNABLE}), LIMITS)[0], TaskAccepted)
    small = NodeLimits(2, 4, 10, 3600, 64, inputs_bytes=10)
    assert "inputs_too_large" in reasons(decide_task(task(), "alice", facts(), small))


def test_the_wall_time_can_be_asked_lower_never_higher() -> None:
    accepted = decide_task(task(resources={"backend_parameters": {"wall_s": "60"}}), "alice", facts(), LIMITS)[0]
    assert accepted.limits.wall_s == 60
    refused = decide_task(task(resources={"backend_parameters": {"wall_s": "99999"}}), "alice", facts(), LIMITS)
    assert "bad_backend_parameter" in reasons(refused)
    strict = decide_task(task(resources={"backend_parameters": {"gpu": "1"}, "backend_parameters_strict": True}),
                         "alice", facts(), LIMITS)
    assert "bad_backend_parameter" in reasons(strict)


@pytest.mark.parametrize("url", ["drs://fi.example.org/GDI-FI-FILE-00000007",
                                 "https://fi.example.org/ga4gh/drs/v1/objects/GDI-FI-FILE-00000007",
                                 "GDI-FI-FILE-00000007"])
def test_an_input_names_an_object_as_drs_does(url: str) -> None:
    assert object_id_of(url) == "GDI-FI-FILE-00000007"


def test_cancel_by_the_owner_or_an_operator_of_a_task_not_ended() -> None:
    cid = uuid.uuid4()
    command = TaskCancelRequested(task_id="task-" + "0" * 32)
    assert isinstance(decide_cancel(command, cid, "alice", ("RUNNING", "alice"))[0], TaskCancelAccepted)
    operator = TaskCancelRequested(task_id="task-" + "0" * 32, as_roles=AsRoles(operator=True))
    assert isinstance(decide_cancel(operator, cid, "ops", ("QUEUED", "alice"))[0], TaskCancelAccepted)
    for current, asker, code in ((("RUNNING", "alice"), "mallory", "not_owner"),
                                 (("COMPLETE", "alice"), "alice", "task_finished"), (None, "alice", "unknown_task")):
        [refused] = decide_cancel(command, cid, asker, current)
        assert isinstance(refused, ProcessingCommandRejected) and refused.reasons[0].code == code
