"""CWL runs on the task sandbox: a WES run request as one engine task, and cwltool's log as WES task logs.

A WES run is executed as one TES task (its id ``task-<run id>``): cwltool (from the package index,
in the node's ``python-pysam`` runtime) runs the approved workflow version's primary descriptor from
``/tool`` with no container and no network, every step a process inside the same sandbox. Its
inputs are this node's DRS objects, staged decrypted under ``/work/in/<n>/<name>`` and named in the
rewritten parameters by path; its outputs are everything under ``/work/out``, which goes to the
airlock like any task's. Pure functions; the gateway, the scheduler and the executor share them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from genomebus.schemas.reception import Reason
from genomebus.schemas.tasks import TaskSpec, TesExecutor, TesInput, TesOutput, TesResources

CWL_VERSIONS = ("v1.0", "v1.1", "v1.2")
ENGINE = "cwltool"
RUN_TAG = "wes_run"
"""The tag that marks a task as a WES run's engine task (its value: the run id)."""
PARAMS_PATH = "/work/.wes/params.json"
ENGINE_LOG = "/work/.wes/engine.log"
ENGINE_OUTPUTS = "/work/.wes/outputs.json"
OUT_DIR = "/work/out"
ENGINE_PARAMETERS = {"wall_s": ("int", "the run's wall time in seconds, at most the node's tes_max_wall_s")}
"""The only workflow_engine_parameters accepted: nothing of cwltool's command line is the caller's."""
MAX_INPUTS = 1000


class RunRefused(ValueError):
    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__("; ".join(r.message for r in reasons))
        self.reasons = reasons


def run_task_id(run_id: str) -> str:
    return f"task-{run_id}"


def engine_command(primary: str) -> list[str]:
    return ["python", "-m", "cwltool", "--no-container", "--disable-color", "--timestamps", "--outdir", OUT_DIR,
            "--tmpdir-prefix", "/work/tmp/", "--tmp-outdir-prefix", "/work/tmp/", f"/tool/{primary}", PARAMS_PATH]


def _is_drs(location: str) -> bool:
    return location.startswith("drs://")


def stage_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[TesInput]]:
    """The parameters with every CWL ``File`` that names a DRS object rewritten to its staged path, and the
    TES inputs that stage them. Anything else that points outside (a URL, a host path, a Directory) is refused."""
    inputs: list[TesInput] = []
    reasons: list[Reason] = []

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
            location = value.get("location") or value.get("path")
            if value["class"] == "Directory":
                reasons.append(Reason(code="bad_input", message=f"{where}: a Directory cannot be staged; name its "
                                                                "files"))
                return value
            if value.get("contents") is not None and location is None:
                return value  # a literal file: cwltool writes it itself
            if not isinstance(location, str) or not _is_drs(location):
                reasons.append(Reason(code="bad_input", message=f"{where}: a File must be a DRS URI of this node's "
                                      f"object (drs://<host>/<id>), not {str(location)[:100]!r}"))
                return value
            if value.get("secondaryFiles"):
                reasons.append(Reason(code="bad_input", message=f"{where}: secondaryFiles are not staged; name "
                                                                "each file as an input"))
            name = PurePosixPath(value.get("basename") or location.rsplit("/", 1)[-1]).name or "input"
            path = f"/work/in/{len(inputs)}/{name}"
            inputs.append(TesInput(url=location, path=path, name=where))
            return {"class": "File", "path": path}
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    staged = {k: walk(v, k) for k, v in params.items()}
    if len(inputs) > MAX_INPUTS:
        reasons.append(Reason(code="too_many_inputs", message=f"{len(inputs)} files; at most {MAX_INPUTS}"))
    if reasons:
        raise RunRefused(reasons)
    return staged, inputs


def engine_task(run_id: str, workflow_url: str, primary: str, params: dict[str, Any], tags: dict[str, str],
                engine_parameters: dict[str, str]) -> TaskSpec:
    """The TES task that runs a WES request (raises ``RunRefused`` for inputs or parameters it cannot take)."""
    reasons = [Reason(code="bad_engine_parameter", message=f"workflow_engine_parameters {k!r} is not accepted "
                      f"here; accepted: {', '.join(ENGINE_PARAMETERS)}") for k in engine_parameters
               if k not in ENGINE_PARAMETERS]
    wall = engine_parameters.get("wall_s")
    if wall is not None and not (wall.isdigit() and int(wall) > 0):
        reasons.append(Reason(code="bad_engine_parameter", message="wall_s must be a whole number of seconds"))
    try:
        staged, inputs = stage_params(params)
    except RunRefused as exc:
        reasons += exc.reasons
    if reasons:
        raise RunRefused(reasons)
    inputs.append(TesInput(path=PARAMS_PATH, content=json.dumps(staged, sort_keys=True)))
    return TaskSpec(
        name=f"WES run {run_id}", description=f"cwltool running {workflow_url}", inputs=tuple(inputs),
        outputs=(TesOutput(path=OUT_DIR, type="DIRECTORY"),),
        executors=(TesExecutor(image=workflow_url, command=tuple(engine_command(primary)), stdout=ENGINE_OUTPUTS,
                               stderr=ENGINE_LOG),),
        resources=TesResources(backend_parameters={"wall_s": wall}) if wall else None,
        tags={**tags, RUN_TAG: run_id})


# -- cwltool's log as WES task logs --------------------------------------------------------------------------

_LINE = re.compile(r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (?P<level>[A-Z]+) (?P<rest>.*)$")
_JOB = re.compile(r"^\[job (?P<name>[^\]]+)\] (?P<text>.*)$")
_STATUS = re.compile(r"^Final process status is (?P<status>\w+)")
_EXIT = re.compile(r"exited with status: (?P<code>-?\d+)")


@dataclass
class StepLog:
    """One job cwltool ran (a step, or one element of a scattered step)."""

    name: str
    cmd: list[str] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    status: str | None = None
    lines: list[str] = field(default_factory=list)
    """What the job and cwltool said about it: its own stdout/stderr (not captured by the step) and errors."""


@dataclass
class EngineLog:
    steps: list[StepLog]
    status: str | None
    """cwltool's final process status: success, permanentFail, temporaryFail (None: it never said)."""
    messages: list[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    """cwltool's output object (its stdout), once read."""


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def parse_log(text: str, *, max_lines: int = 200) -> EngineLog:
    """cwltool's ``--timestamps`` log, sequential execution, as one entry per job in the order they started."""
    steps: dict[str, StepLog] = {}
    current: StepLog | None = None
    in_command = False
    status = None
    messages: list[str] = []
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if m is None:
            if in_command and current is not None:
                current.cmd.append(raw.strip().rstrip("\\").strip())
                in_command = raw.rstrip().endswith("\\")
            elif current is not None and len(current.lines) < max_lines:
                current.lines.append(raw)
            continue
        in_command = False
        when, level, rest = _time(m["time"]), m["level"], m["rest"]
        if s := _STATUS.match(rest):
            status = s["status"]
            continue
        job = _JOB.match(rest)
        if job is None:
            if level in ("WARNING", "ERROR") and len(messages) < max_lines:
                messages.append(rest)
            continue
        name, said = job["name"], job["text"]
        step = steps.get(name)
        if step is None:
            step = steps[name] = StepLog(name=name, start_time=when)
        current = step
        if "$ " in said and not step.cmd:  # "[job x] /work/tmp/abc$ python \"
            command = said.split("$ ", 1)[1]
            step.cmd.append(command.rstrip("\\").strip())
            in_command = command.rstrip().endswith("\\")
        elif said.startswith("completed "):
            step.status = said.removeprefix("completed ").strip()
            step.end_time = when
            if step.exit_code is None and step.status == "success":
                step.exit_code = 0
            current = None
        elif e := _EXIT.search(said):
            step.exit_code = int(e["code"])
            step.lines.append(said)
        elif level in ("WARNING", "ERROR") and len(step.lines) < max_lines:
            step.lines.append(said)
    for step in steps.values():  # cwltool prints the command shell-quoted, one argument a line
        joined = " ".join(c for c in step.cmd if c)
        try:
            step.cmd = shlex.split(joined)
        except ValueError:
            step.cmd = [c for c in step.cmd if c]
    return EngineLog(list(steps.values()), status, messages)


def outputs_object(text: str) -> dict[str, Any]:
    """cwltool's output object (its stdout), with host-free paths; {} if it wrote none."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
