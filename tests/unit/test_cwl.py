"""WES on the task sandbox: a run request as its engine task, cwltool's log as WES task logs, and the
scheduler's admission of a run (the same checks as a task's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genomebus.consumers.scheduler import NodeLimits, TaskFacts, decide_run, plan_run
from genomebus.infra import cwl
from genomebus.infra.settings import Settings
from genomebus.schemas.access import AsRoles
from genomebus.schemas.tasks import TaskAccepted, TaskRequested
from genomebus.schemas.workflows import RunRequest, WorkflowRejected, WorkflowRequested, WorkflowStarted

LOG = (Path(__file__).parent / "data" / "cwltool-scatter-then-fail.log").read_text()
RUN = "a" * 32
URL = "http://127.0.0.1:8080/ga4gh/trs/v2/tools/region-summary/versions/1.0.0"
DRS = "drs://127.0.0.1:8080/GDI-FI-FILE-00000001"


def test_drs_files_are_staged_and_named_by_path_everywhere_in_the_job() -> None:
    params = {"variants": [{"class": "File", "location": DRS}, {"class": "File", "path": DRS, "basename": "b.vcf"}],
              "nested": {"one": {"class": "File", "location": DRS}}, "region": "21:1-100", "n": 3}
    staged, inputs = cwl.stage_params(params)
    assert [i.path for i in inputs] == ["/work/in/0/GDI-FI-FILE-00000001", "/work/in/1/b.vcf",
                                        "/work/in/2/GDI-FI-FILE-00000001"]
    assert {i.url for i in inputs} == {DRS}
    assert staged["variants"][1] == {"class": "File", "path": "/work/in/1/b.vcf"}
    assert staged["nested"]["one"]["path"] == "/work/in/2/GDI-FI-FILE-00000001"
    assert staged["region"] == "21:1-100" and staged["n"] == 3


@pytest.mark.parametrize("value", [
    {"class": "File", "location": "https://example.org/x.vcf"},
    {"class": "File", "path": "/etc/passwd"},
    {"class": "Directory", "location": DRS},
    {"class": "File", "location": DRS, "secondaryFiles": [{"class": "File", "location": DRS}]},
])
def test_anything_but_a_drs_file_is_refused(value: dict) -> None:
    with pytest.raises(cwl.RunRefused) as refused:
        cwl.stage_params({"x": value})
    assert refused.value.reasons[0].code == "bad_input"


def test_a_literal_file_is_left_to_cwltool() -> None:
    literal = {"class": "File", "basename": "a.txt", "contents": "hello"}
    assert cwl.stage_params({"x": literal}) == ({"x": literal}, [])


def test_the_engine_task_runs_cwltool_without_a_container_and_collects_out() -> None:
    spec = cwl.engine_task(RUN, URL, "region-summary.cwl", {"variants": [{"class": "File", "location": DRS}]},
                           {"project": "p1"}, {"wall_s": "600"})
    [executor] = spec.executors
    assert executor.image == URL and executor.command[:4] == ("python", "-m", "cwltool", "--no-container")
    assert executor.command[-2:] == ("/tool/region-summary.cwl", cwl.PARAMS_PATH)
    assert executor.stderr == cwl.ENGINE_LOG and executor.stdout == cwl.ENGINE_OUTPUTS
    params = next(i for i in spec.inputs if i.path == cwl.PARAMS_PATH)
    assert json.loads(params.content) == {"variants": [{"class": "File", "path": "/work/in/0/GDI-FI-FILE-00000001"}]}
    assert [(o.path, o.type) for o in spec.outputs] == [(cwl.OUT_DIR, "DIRECTORY")]
    assert spec.tags == {"project": "p1", cwl.RUN_TAG: RUN}
    assert spec.resources.backend_parameters == {"wall_s": "600"}


@pytest.mark.parametrize("params", [{"outdir": "/"}, {"wall_s": "ten"}, {"cwltool": "--enable-net"}])
def test_engine_parameters_are_only_the_accepted_ones(params: dict) -> None:
    with pytest.raises(cwl.RunRefused) as refused:
        cwl.engine_task(RUN, URL, "w.cwl", {}, {}, params)
    assert refused.value.reasons[0].code == "bad_engine_parameter"


def test_cwltools_log_becomes_one_task_log_per_job_with_its_exit_code() -> None:
    log = cwl.parse_log(LOG)
    assert log.status == "permanentFail"
    assert [(s.name, s.status, s.exit_code) for s in log.steps] == [
        ("summarise", "success", 0), ("summarise_2", "success", 0), ("breaks", "permanentFail", 3)]
    breaks = log.steps[2]
    assert breaks.cmd == ["python", "-c", "import sys; print('about to fail'); sys.stderr.write('boom\\n'); "
                                          "sys.exit(3)"]
    assert "boom" in breaks.lines and any("Did not find output file" in line for line in breaks.lines)
    assert breaks.start_time is not None and breaks.end_time >= breaks.start_time
    assert log.steps[0].cmd[:2] == ["python", "/tool/variant_summary.py"]


def test_a_log_cut_short_has_no_status_and_the_jobs_so_far() -> None:
    cut = LOG[:LOG.index("[job summarise_2] completed")]
    log = cwl.parse_log(cut)
    assert log.status is None and [s.name for s in log.steps] == ["summarise", "summarise_2"]
    assert log.steps[1].status is None


def test_outputs_object_is_read_leniently() -> None:
    assert cwl.outputs_object('{"tables": []}') == {"tables": []}
    assert cwl.outputs_object("") == {} and cwl.outputs_object("not json") == {} and cwl.outputs_object("[1]") == {}


# -- the scheduler's admission of a run ---------------------------------------------------------------------

SETTINGS = Settings(node_id="FI", gateway_url="http://127.0.0.1:8080")
VERSION = {"tool_id": "region-summary", "version_id": "1.0.0", "runtime": "python-pysam",
           "files": [{"path": "region-summary.cwl", "file_type": "PRIMARY_DESCRIPTOR",
                      "content": "cwlVersion: v1.2\nclass: Workflow\n"}]}


def run(version: str = "v1.2", params: dict | None = None) -> WorkflowRequested:
    return WorkflowRequested(run_id=RUN, request=RunRequest(workflow_url=URL, workflow_type_version=version,
                                                            workflow_params=params or {}),
                             as_roles=AsRoles(researcher=True))


def test_a_run_is_planned_as_its_engine_task() -> None:
    planned = plan_run(SETTINGS, run(), VERSION, "approved")
    assert isinstance(planned, TaskRequested) and planned.task_id == f"task-{RUN}"
    assert planned.spec.tags[cwl.RUN_TAG] == RUN


@pytest.mark.parametrize(("version", "state", "kind", "code"), [
    (None, "registered", "v1.2", "workflow_not_approved"),
    (None, "withdrawn", "v1.2", "workflow_not_approved"),
    (None, None, "v1.2", "workflow_not_approved"),
    (VERSION, "approved", "v1.0", "version_mismatch"),
])
def test_a_run_that_cannot_be_planned_is_rejected_with_why(version, state, kind, code) -> None:
    planned = plan_run(SETTINGS, run(kind), version, state)
    assert isinstance(planned, list) and planned[0].code == code
    [rejected] = decide_run(run(kind), "alice", planned, TaskFacts(), NodeLimits.of(SETTINGS))
    assert isinstance(rejected, WorkflowRejected) and rejected.reasons[0].code == code


def test_an_admitted_run_starts_beside_its_engine_tasks_acceptance() -> None:
    planned = plan_run(SETTINGS, run(), VERSION, "approved")
    facts = TaskFacts(tools={URL: VERSION})
    decided = decide_run(run(), "alice", planned, facts, NodeLimits.of(SETTINGS))
    assert [type(e) for e in decided][:2] == [WorkflowStarted, TaskAccepted]
    assert decided[0].task_id == decided[1].task_id == f"task-{RUN}"


def test_a_run_refused_as_a_task_is_rejected_with_the_tasks_reasons() -> None:
    planned = plan_run(SETTINGS, run(), VERSION, "approved")
    decided = decide_run(run(), "alice", planned, TaskFacts(tools={URL: "withdrawn"}), NodeLimits.of(SETTINGS))
    assert isinstance(decided[0], WorkflowRejected) and decided[0].reasons
