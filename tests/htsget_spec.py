"""Validate htsget answers against the schemas of ``specs/htsget.openapi.yaml`` (1.3.0), $refs resolved in place.

Error bodies are checked against the one error schema their name gives (the spec's 400 response
is a ``oneOf`` of three schemas that differ only in their examples, so every body would match all
three). The service-info's base schema is a remote $ref; it stands as an object whose GA4GH fields
are checked here instead.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
import yaml

from tests.data import REPO

SPEC = REPO / "specs" / "htsget.openapi.yaml"
ERROR_SCHEMAS = {"InvalidAuthentication": "InvalidAuthenticationError", "PermissionDenied": "PermissionDeniedError",
                 "NotFound": "NotFoundError", "UnsupportedFormat": "UnsupportedFormatError",
                 "InvalidInput": "InvalidInputError", "InvalidRange": "InvalidRangeError",
                 "PayloadTooLarge": "PayloadTooLargeError", "InternalServerError": "InternalServerError"}
_SERVICE = {"type": "object", "required": ["id", "name", "type", "organization", "version"],
            "properties": {"type": {"type": "object", "required": ["group", "artifact", "version"]},
                           "organization": {"type": "object", "required": ["name", "url"]}}}


@functools.cache
def _components() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    components = spec["components"]
    components["schemas"]["ServiceInfo"] = _SERVICE
    return components


def _resolve(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            section, name = node["$ref"].removeprefix("#/components/").split("/")
            return _resolve(components[section][name], components)
        return {k: _resolve(v, components) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, components) for v in node]
    return node


@functools.cache
def _validator(name: str) -> Any:
    components = _components()
    return jsonschema_rs.Draft4Validator(_resolve(components["schemas"][name], components))


def check(schema: str, body: Any) -> None:
    """Raise with every violation if ``body`` does not match the spec's schema ``schema``."""
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in _validator(schema).iter_errors(body)]
    assert not errors, f"{schema}: {errors}"


def check_ticket(endpoint: str, body: Any) -> None:
    check("htsgetResponseReads" if endpoint == "reads" else "htsgetResponseVariants", body)
    classes = {"class" in url for url in body["htsget"]["urls"]}
    assert len(classes) == 1, "either all or none of the URLs have a class (htsget 1.3)"


def check_error(body: Any, name: str) -> None:
    check(ERROR_SCHEMAS[name], body)
    assert body["htsget"]["error"] == name, body
