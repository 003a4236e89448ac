"""The contacts export job: start, poll with backoff, download without the key, parse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from sync_service.client import SendGridClient
from sync_service.contacts_export import (
    ExportPolicy,
    iterate_exported_batches,
    wait_for_export,
)
from sync_service.errors import ExportFailed
from sync_service.export_files import Row
from tests.fake_sendgrid.payloads import (
    API,
    EXPORT_HEADER,
    export_created,
    export_csv_row,
    export_status,
    gzip_bytes,
)
from tests.sync.fakes import FakeTime, rows_in

EXPORTS = f"{API}/v3/marketing/contacts/exports"
EXPORT_ID = "6f7d5c46-2f0c-4d35-9c6b-3b9a5b1e2d10"
S3 = "https://sendgrid-exports.s3.amazonaws.com"
FILE_1 = f"{S3}/{EXPORT_ID}/contacts-1.csv.gz?X-Amz-Signature=abc"
FILE_2 = f"{S3}/{EXPORT_ID}/contacts-2.csv.gz?X-Amz-Signature=def"

CONTACTS = [
    ("47d23ab0-d895-4359-a0d1-ffc7a6fc7e70", "abcd@gmail.com", "Ab"),
    ("5a1e9e0d-6c1f-4b7e-8d3a-0f6b2f1c9e11", "efgh@example.com", "Ef"),
    ("9b0c3f8e-2a4d-4f5e-8c7b-1d2e3f4a5b6c", "ijkl@example.com", "Ij"),
]


def csv_file(contacts: list[tuple[str, str, str]]) -> str:
    return EXPORT_HEADER + "\r\n" + "".join(export_csv_row(*contact) for contact in contacts)


async def drain_into(sink: list[Row], rows: AsyncIterator[Row]) -> None:
    """Keep what arrived before a failure, so a test can check what was already yielded."""
    async for row in rows:
        sink.append(row)


async def exported_rows(
    client: SendGridClient, policy: ExportPolicy | None = None
) -> AsyncIterator[Row]:
    async for batch in iterate_exported_batches(client, policy):
        for row in rows_in(batch):
            yield row


async def read_all(client: SendGridClient, policy: ExportPolicy | None = None) -> list[Row]:
    return [row async for row in exported_rows(client, policy)]


async def test_pending_then_ready_gzip_csv_in_two_files(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    start = sendgrid_router.post(EXPORTS).respond(202, json=export_created(EXPORT_ID))
    status = sendgrid_router.get(f"{EXPORTS}/{EXPORT_ID}").mock(
        side_effect=[
            httpx.Response(200, json=export_status(EXPORT_ID, "pending")),
            httpx.Response(200, json=export_status(EXPORT_ID, "pending")),
            httpx.Response(
                200,
                json=export_status(
                    EXPORT_ID, "ready", urls=[FILE_1, FILE_2], contact_count=len(CONTACTS)
                ),
            ),
        ]
    )
    first = sendgrid_router.get(FILE_1).respond(
        200,
        content=gzip_bytes(csv_file(CONTACTS[:2])),
        headers={"Content-Type": "application/gzip"},
    )
    second = sendgrid_router.get(FILE_2).respond(
        200,
        content=gzip_bytes(csv_file(CONTACTS[2:])),
        headers={"Content-Type": "application/gzip"},
    )

    rows = await read_all(sendgrid_api, ExportPolicy(poll_initial=2.0, poll_max=30.0))

    assert [row["contact_id"] for row in rows] == [contact[0] for contact in CONTACTS]
    assert [row["email"] for row in rows] == [contact[1] for contact in CONTACTS]
    assert json.loads(start.calls.last.request.content) == {"file_type": "csv"}
    assert status.call_count == 3
    # growing pauses between polls, never a busy loop
    assert fake_time.sleeps == [2.0, 4.0]
    for download in (first, second):
        assert download.call_count == 1
        assert "Authorization" not in download.calls.last.request.headers


async def test_a_plain_csv_export_is_read_as_is(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    plain_url = f"{S3}/{EXPORT_ID}/contacts.csv?X-Amz-Signature=abc"
    sendgrid_router.post(EXPORTS).respond(202, json=export_created(EXPORT_ID))
    sendgrid_router.get(f"{EXPORTS}/{EXPORT_ID}").respond(
        200, json=export_status(EXPORT_ID, "ready", urls=[plain_url], contact_count=3)
    )
    sendgrid_router.get(plain_url).respond(
        200, content=csv_file(CONTACTS).encode(), headers={"Content-Type": "text/csv"}
    )

    rows = await read_all(sendgrid_api)

    assert [row["contact_id"] for row in rows] == [contact[0] for contact in CONTACTS]
    assert rows[1]["first_name"] == "Ef"


async def test_a_failed_export_reports_sendgrids_message(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    sendgrid_router.post(EXPORTS).respond(202, json=export_created(EXPORT_ID))
    sendgrid_router.get(f"{EXPORTS}/{EXPORT_ID}").mock(
        side_effect=[
            httpx.Response(200, json=export_status(EXPORT_ID, "pending")),
            httpx.Response(
                200,
                json=export_status(EXPORT_ID, "failure", message="export exceeded the row limit"),
            ),
        ]
    )

    with pytest.raises(ExportFailed, match="'failure': export exceeded the row limit"):
        await read_all(sendgrid_api)


async def test_an_export_that_never_becomes_ready_gives_up_after_the_bound(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router, fake_time: FakeTime
) -> None:
    status = sendgrid_router.get(f"{EXPORTS}/{EXPORT_ID}").respond(
        200, json=export_status(EXPORT_ID, "pending")
    )
    policy = ExportPolicy(poll_initial=2.0, poll_max=30.0, max_wait=300.0)

    with pytest.raises(ExportFailed, match="still pending after 300 s"):
        await wait_for_export(sendgrid_api, EXPORT_ID, policy)

    assert max(fake_time.sleeps) == 30.0
    assert 300.0 <= sum(fake_time.sleeps) < 300.0 + 30.0
    assert status.call_count == len(fake_time.sleeps) + 1


async def test_a_download_5xx_is_retried_and_an_expired_link_fails(
    sendgrid_api: SendGridClient, sendgrid_router: respx.Router
) -> None:
    sendgrid_router.post(EXPORTS).respond(202, json=export_created(EXPORT_ID))
    sendgrid_router.get(f"{EXPORTS}/{EXPORT_ID}").respond(
        200, json=export_status(EXPORT_ID, "ready", urls=[FILE_1, FILE_2], contact_count=3)
    )
    flaky = sendgrid_router.get(FILE_1).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200, content=gzip_bytes(csv_file(CONTACTS[:2]))),
        ]
    )
    sendgrid_router.get(FILE_2).respond(
        403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    )
    rows: list[Row] = []

    with pytest.raises(ExportFailed, match=r"HTTP 403 .*Request has expired"):
        await drain_into(rows, exported_rows(sendgrid_api))

    assert flaky.call_count == 2
    assert [row["contact_id"] for row in rows] == [contact[0] for contact in CONTACTS[:2]]
