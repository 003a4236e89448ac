"""SendGrid's transactional templates in the fake app, as tsg_templates_v3.yaml answers them:

- `GET /v3/templates?page_size=&generations=&page_token=`: `{"result": [...], "_metadata":
  {prev, self, next, count}}`. `page_size` is required (1..200). `generations` is a comma list
  of `legacy` and `dynamic` whose default is `legacy`, so a reader that leaves it out silently
  gets no dynamic template, as from SendGrid. Each template embeds its versions, lean: without
  their content (TransactionalTemplatesVersionOutputLean);
- `GET /v3/templates/{template_id}`: one template (TransactionalTemplate), its versions whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fake_sendgrid.params import BadRequest, comma_list, page_offset, required_int_param
from tests.fake_sendgrid.payloads import JSON, error_body, paged

if TYPE_CHECKING:
    from tests.fake_sendgrid.state import FakeAccountState

GENERATIONS = ("legacy", "dynamic")
MAX_PAGE_SIZE = 200
# What a version listed with its template leaves out; `GET /v3/templates/{id}` has it all.
_CONTENT = ("html_content", "plain_content", "test_data")


def template_version(
    version_id: str,
    name: str,
    *,
    active: int = 1,
    subject: str = "<%subject%>",
    updated_at: str = "2019-03-13 18:56:33",
    **fields: object,
) -> JSON:
    """TransactionalTemplateVersionOutput, the spec example's values unless given; its
    `template_id` is set by the template it is added to (`FakeAccountState.add_template`)."""
    if active not in (0, 1):
        raise ValueError("a version's `active` is 0 or 1")
    return {
        "id": version_id,
        "template_id": "",
        "active": active,
        "name": name,
        "html_content": "<%body%>",
        "plain_content": "<%body%>",
        "generate_plain_content": True,
        "subject": subject,
        "updated_at": updated_at,
        "editor": "code",
        **fields,
    }


def transactional_template(
    template_id: str, name: str, generation: str, versions: list[JSON], updated_at: str
) -> JSON:
    """TransactionalTemplate: `{id (a 36-character UUID), name, generation, updated_at
    ("YYYY-MM-DD HH:MM:SS", no time zone), versions}`; at most one version is active."""
    if generation not in GENERATIONS:
        raise ValueError(f"a template's generation is one of {GENERATIONS}, not {generation!r}")
    if len(template_id) != 36:
        raise ValueError(f"template ids are 36-character UUIDs, not {template_id!r}")
    if sum(version["active"] for version in versions) > 1:
        raise ValueError("only one version of a template can be active")
    return {
        "id": template_id,
        "name": name,
        "generation": generation,
        "updated_at": updated_at,
        "versions": [{**version, "template_id": template_id} for version in versions],
    }


def _lean(template: JSON) -> JSON:
    versions = [
        {key: value for key, value in version.items() if key not in _CONTENT}
        for version in template["versions"]
    ]
    return {**template, "versions": versions}


def add_template_routes(app: FastAPI, account: FakeAccountState) -> None:
    """On the app itself, not an included router, so respx_route finds each route."""

    @app.get("/v3/templates")
    async def templates(request: Request) -> JSONResponse:
        query = request.query_params
        size = required_int_param(query, "page_size", minimum=1, maximum=MAX_PAGE_SIZE)
        generations = comma_list(query, "generations") or ["legacy"]
        unknown = sorted(set(generations) - set(GENERATIONS))
        if unknown:
            raise BadRequest("generations", f"unknown generations {unknown}: legacy, dynamic")
        chosen = [_lean(t) for t in account.templates if t["generation"] in generations]
        start = page_offset(query, len(chosen))
        return JSONResponse(paged(chosen, str(request.url), size, start))

    @app.get("/v3/templates/{template_id}")
    async def template(template_id: str) -> JSONResponse:
        found = next((t for t in account.templates if t["id"] == template_id), None)
        if found is None:
            return JSONResponse(error_body(f"template {template_id} not found"), status_code=404)
        return JSONResponse(found)
