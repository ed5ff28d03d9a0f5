"""Validators for the DRS 1.5 schemas of ``specs/drs/openapi/``, resolved from its split YAML files.

The spec is split over files that ``$ref`` one another by relative path (``../schemas/DrsObject.yaml``)
and once by URL (service-info 1.0's ``Service``, kept in ``specs/service-info.yaml``). ``schema(name)``
gathers every file a response or schema reaches into one JSON Schema, each file under ``$defs``
(``ContentsObject`` refers to itself, so inlining would not end), and ``validator(name)`` checks
answers against it. ``errors(name, body)`` lists what does not match.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from tests.data import REPO

SPECS = REPO / "specs"
DRS = SPECS / "drs" / "openapi" / "components"
SERVICE_INFO_URL = "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/service-info.yaml"


@functools.cache
def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in (p for p in pointer.split("/") if p):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def bundle(path: Path, pointer: str = "") -> dict[str, Any]:
    """The schema at ``path#pointer`` with everything it refers to under ``$defs``."""
    defs: dict[str, Any] = {}

    def name_of(target: Path, ptr: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{target.relative_to(SPECS)}#{ptr}")
        if name not in defs:
            defs[name] = {}  # placeholder first: a schema may refer to itself
            defs[name] = walk(_pointer(_load(target), ptr), target)
        return name

    def walk(node: Any, where: Path) -> Any:
        if isinstance(node, list):
            return [walk(n, where) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            file_part, _, ptr = ref.partition("#")
            if file_part == SERVICE_INFO_URL:
                target = SPECS / "service-info.yaml"
            elif file_part:
                target = (where.parent / file_part).resolve()
            else:
                target = where
            return {"$ref": f"#/$defs/{name_of(target, ptr)}"}
        return {key: walk(value, where) for key, value in node.items() if key != "example"}

    root = name_of(path.resolve(), pointer)
    return {"$defs": defs, "$ref": f"#/$defs/{root}"}


RESPONSES = {
    "DrsObject": ("schemas/DrsObject.yaml", ""),
    "AccessURL": ("schemas/AccessURL.yaml", ""),
    "Authorizations": ("schemas/Authorizations.yaml", ""),
    "Error": ("schemas/Error.yaml", ""),
    "BulkObjects": ("responses/200OkDrsObjects.yaml", "/content/application~1json/schema"),
    "BulkAuthorizations": ("responses/200OkBulkAuthorizations.yaml", "/content/application~1json/schema"),
    "BulkAccessURLs": ("responses/200OkAccesses.yaml", "/content/application~1json/schema"),
    "ServiceInfo": ("responses/200ServiceInfo.yaml", "/content/application~1json/schema"),
}


@functools.cache
def validator(name: str) -> jsonschema_rs.Draft202012Validator:
    file, pointer = RESPONSES[name]
    return jsonschema_rs.Draft202012Validator(bundle(DRS / file, pointer), validate_formats=True)


def errors(name: str, body: Any) -> list[str]:
    """What in ``body`` does not match the spec's ``name`` (empty when it matches)."""
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator(name).iter_errors(body)]


def strict(name: str) -> dict[str, Any]:
    """The spec's schema with no extra property allowed anywhere it lists properties (typos show up)."""
    def close(node: Any) -> Any:
        if isinstance(node, list):
            return [close(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: close(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out

    file, pointer = RESPONSES[name]
    return close(bundle(DRS / file, pointer))


def strict_errors(name: str, body: Any) -> list[str]:
    v = jsonschema_rs.Draft202012Validator(strict(name), validate_formats=True)
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in v.iter_errors(body)]
