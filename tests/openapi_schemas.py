"""Validate an API's answers against the component schemas of its OpenAPI document in ``specs/`` (TRS 2,
TES 1.1), local ``$ref``s resolved in place. A remote ``$ref`` (service-info's) stands as an object whose
GA4GH fields are checked instead."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
import yaml

from tests.data import REPO

_SERVICE_TYPE = {"type": "object", "required": ["group", "artifact", "version"],
                 "properties": {k: {"type": "string"} for k in ("group", "artifact", "version")}}
_SERVICE = {"type": "object", "required": ["id", "name", "type", "organization", "version"],
            "properties": {"type": {"type": "object", "required": ["group", "artifact", "version"]},
                           "organization": {"type": "object", "required": ["name", "url"]}}}


@functools.cache
def _components(spec: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "specs" / spec).read_text())["components"]


def _resolve(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/components/"):  # service-info's own schemas, on the web
                return _SERVICE_TYPE if ref.endswith("/ServiceType") else _SERVICE
            section, name = ref.removeprefix("#/components/").split("/")
            return _resolve(components[section][name], components)
        return {k: _resolve(v, components) for k, v in node.items() if k not in ("example", "examples")}
    if isinstance(node, list):
        return [_resolve(v, components) for v in node]
    return node


@functools.cache
def _validator(spec: str, name: str) -> Any:
    components = _components(spec)
    return jsonschema_rs.Draft4Validator(_resolve(components["schemas"][name], components))


def check(spec: str, schema: str, body: Any) -> None:
    """Raise with every violation if ``body`` does not match ``schema`` of ``specs/<spec>``."""
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
              for e in _validator(spec, schema).iter_errors(body)]
    assert not errors, f"{schema}: {errors}"


def check_list(spec: str, schema: str, body: Any) -> None:
    assert isinstance(body, list), body
    for item in body:
        check(spec, schema, item)
