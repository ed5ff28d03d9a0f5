"""Runtimes: the environments a task's executors run in, provided by the node (no container engine here).

A tool version names one (``runtime``); the scheduler refuses a task whose tool needs a runtime this
node does not have. Each is a set of host folders bound read-only into the sandbox, and a ``PATH``.

- ``python-pysam``: the node's own Python with pysam (and only what its environment installs): ``python``
  on the PATH. Mounted at ``/opt/runtimes/python-pysam`` (the environment) beside the Python it was
  made from, at its own path, so the environment finds its interpreter.
- ``posix-shell``: ``/bin/sh`` and the coreutils of the host's ``/usr``.

``/usr`` is in every sandbox (the C library and the loader live there), so ``posix-shell`` adds nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    binds: tuple[tuple[Path, str], ...] = ()
    """(host folder, path inside the sandbox), read-only."""
    path: str = SYSTEM_PATH
    env: dict[str, str] = field(default_factory=dict)


def _python_pysam() -> Runtime:
    venv = Path(sys.prefix)
    base = Path(sys.base_prefix)
    inside = "/opt/runtimes/python-pysam"
    binds: tuple[tuple[Path, str], ...] = ((venv, inside),)
    if base != venv:
        binds += ((base, str(base)),)
    return Runtime("python-pysam", f"Python {sys.version.split()[0]} with pysam, the node's own environment",
                   binds, path=f"{inside}/bin:{SYSTEM_PATH}", env={"PYTHONDONTWRITEBYTECODE": "1"})


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    _python_pysam(),
    Runtime("posix-shell", "/bin/sh with the host's coreutils"),
)}
