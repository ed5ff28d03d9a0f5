"""Imports run one way: entry point (genomebus/) → gateway, consumers, producers → infra → schemas.

Every ``import`` in the source, at any depth (imports inside functions included), is checked
against the layer of the file it sits in. The middle layers do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"schemas": "schemas", "infra": "infra", "producers": "producers", "consumers": "consumers",
           "gateway": "gateway", "genomebus": "entry"}
ALLOWED = {
    "schemas": {"schemas"},
    "infra": {"infra", "schemas"},
    "producers": {"producers", "infra", "schemas"},
    "consumers": {"consumers", "infra", "schemas"},
    "gateway": {"gateway", "infra", "schemas"},
    "entry": {"entry", "gateway", "consumers", "producers", "infra", "schemas"},
}


def layer_of(module: str) -> str | None:
    """The layer an imported ``genomebus...`` module belongs to (None if not ours)."""
    parts = module.split(".")
    if parts[0] != "genomebus":
        return None
    if len(parts) > 1 and parts[1] in FOLDERS and parts[1] != "genomebus":
        return FOLDERS[parts[1]]
    return "entry"


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write genomebus.<layer>...")
    return found


def violations() -> list[str]:
    out = []
    for folder, layer in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, module in imports_of(path):
                target = layer_of(module)
                if target is not None and target not in ALLOWED[layer]:
                    out.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {module} ({target})")
            for line, module in imports_of(path):
                generic = module.split(".")[0]
                if generic in FOLDERS and generic != "genomebus":
                    out.append(f"{path.relative_to(ROOT)}:{line}: imports {module} by its folder name; "
                               f"write genomebus.{module}")
    return out


def test_no_import_runs_upward_or_sideways():
    assert violations() == []


@pytest.mark.parametrize(("source", "module", "bad"), [
    ("schemas", "genomebus.infra.settings", True),
    ("infra", "genomebus.consumers.projector", True),
    ("gateway", "genomebus.consumers.projector", True),
    ("producers", "genomebus.gateway.app", True),
    ("consumers", "genomebus.infra.readmodels.files", False),
    ("entry", "genomebus.consumers.qc", False),
])
def test_the_rule_itself(source: str, module: str, bad: bool):
    assert (layer_of(module) not in ALLOWED[source]) is bad
