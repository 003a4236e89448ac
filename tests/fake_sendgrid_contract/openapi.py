"""Checking an answer of the fake SendGrid against the response schema SendGrid's OpenAPI file
(tests/data/sendgrid-oai) gives for that path, method and status, with jsonschema.

The files are OpenAPI 3.1, whose schemas are JSON Schema 2020-12, so each file is one
`referencing` resource and a response schema is validated where it stands in the file: its
`$ref`s to `#/components/...` resolve in the same file. Two readings of the files are made
explicit here rather than loosening the check:

- `nullable: true` (an OpenAPI 3.0 keyword the 3.1 files still carry on ErrorResponse's
  `field`, whose examples are `null`) is read as it is meant: the type or null;
- `format: uuid` also accepts "all", the value the files' own descriptions give
  `ab_variation` and `step_id` when the stats are not grouped by them.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.data import DATA

SPECS = DATA / "sendgrid-oai"
_BASE = "urn:sendgrid-oai:"
# ErrorResponse is the same schema in every file that has one; the templates file has none.
_ERRORS = "tsg_suppressions_v3"


def _read_nullable(node: Any) -> Any:
    """The file with every `nullable: true` turned into a type that also admits null."""
    if isinstance(node, list):
        return [_read_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    read = {key: _read_nullable(value) for key, value in node.items()}
    if read.pop("nullable", False) is True and isinstance(read.get("type"), str):
        read["type"] = [read["type"], "null"]
    return read


@functools.cache
def spec(name: str) -> dict[str, Any]:
    """tests/data/sendgrid-oai/`name`.yaml, read."""
    with (SPECS / f"{name}.yaml").open(encoding="utf-8") as file:
        document: dict[str, Any] = _read_nullable(yaml.safe_load(file))
    return document


@functools.cache
def _registry() -> Registry[Any]:
    names = sorted(path.stem for path in SPECS.glob("*.yaml"))
    resources = [(_BASE + name, DRAFT202012.create_resource(spec(name))) for name in names]
    return Registry().with_resources(resources)


_FORMATS = FormatChecker()


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid_or_all(value: object) -> bool:
    if not isinstance(value, str) or value == "all":
        return True
    return str(uuid.UUID(value)) == value.lower()


def _escape(key: str) -> str:
    """A key as one JSON-pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _documented(name: str, path: str, method: str, status: int) -> bool:
    return str(status) in spec(name)["paths"][path][method]["responses"]


def _response_pointer(name: str, path: str, method: str, status: int) -> str:
    """Where the JSON schema of the answer `status` to `method path` is in file `name`,
    following a `$ref` to `#/components/responses/...`."""
    if not _documented(name, path, method, status):
        raise AssertionError(f"{name}: {method.upper()} {path} documents no {status} answer")
    pointer = "/" + "/".join(_escape(k) for k in ("paths", path, method, "responses", str(status)))
    response = spec(name)["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
        response = spec(name)["components"]["responses"][pointer.rsplit("/", 1)[1]]
    if "application/json" not in response.get("content", {}):
        raise AssertionError(f"{name}: the {status} answer to {method.upper()} {path} has no JSON")
    return f"{pointer}/content/application~1json/schema"


def _errors(name: str, pointer: str, body: Any) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": f"{_BASE}{name}#{pointer}"}, registry=_registry(), format_checker=_FORMATS
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    ]


def _json(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0]
    assert content_type == "application/json", f"{response.request.url}: {content_type!r}"
    return response.json()


def response_errors(
    name: str, path: str, response: httpx.Response, method: str = "get"
) -> list[str]:
    """Every way `response` departs from what file `name` says `method path` answers with its
    status (`path` as the file spells it, e.g. /v3/asm/groups/{group_id}/suppressions); empty
    when it matches."""
    pointer = _response_pointer(name, path, method, response.status_code)
    return _errors(name, pointer, _json(response))


def assert_answers_as_documented(name: str, path: str, response: httpx.Response) -> None:
    errors = response_errors(name, path, response)
    assert not errors, f"{response.request.url} {response.status_code}:\n" + "\n".join(errors)


def assert_error_response(name: str, path: str, response: httpx.Response, status: int) -> None:
    """`response` is a `status` whose body is what file `name` documents for it on `GET path`,
    or SendGrid's ErrorResponse (`{"errors": [{"field", "message"}]}`) where the file documents
    no such answer; either way it carries a message."""
    assert response.status_code == status, (response.status_code, response.text)
    if _documented(name, path, "get", status):
        errors = response_errors(name, path, response)
    else:
        carrier = name if "ErrorResponse" in spec(name)["components"]["schemas"] else _ERRORS
        errors = _errors(carrier, "/components/schemas/ErrorResponse", _json(response))
    assert not errors, f"{response.request.url} {response.status_code}:\n" + "\n".join(errors)
    assert response.json()["errors"][0]["message"]
