"""SendGrid's documented sample events land in the right tables with the right values."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from tests.webhook_helpers import body_of, count, new_source, rows, sample_events


async def test_every_documented_sample_lands_in_its_table(
    ingest: httpx.AsyncClient, ingest_app: FastAPI
) -> None:
    source = await new_source(ingest)
    events = sample_events()
    response = await ingest.post(source["path"], content=body_of(events))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": len(events), "duplicates": 0, "rejected": 0}
    schema = source["schema"]
    expected_tables = {
        "processed": 4, "dropped": 1, "delivered": 2, "deferred": 1, "bounce": 2, "_open": 2,
        "click": 2, "spam_report": 1, "unsubscribe": 2, "group_unsubscribe": 1,
        "group_resubscribe": 1, "account_status_change": 1,
    }  # fmt: skip
    for table, expected in expected_tables.items():
        assert len(await rows(ingest_app, schema, table)) == expected, table
    assert await count(ingest_app, f"SELECT count(*) FROM {schema}.activity") == len(events)

    processed = await rows(ingest_app, schema, "processed")
    pooled = next(r for r in processed if r["sg_event_id"] == "rbtnWrG1DVDGGGFHFyun0A==")
    assert pooled["pool_name"] == "new_MY_test"
    assert pooled["pool_id"] == "210"
    assert pooled["smtp_id"] == "<14c5d75ce93.dfd.64b469@ismtpd-555>"
    assert pooled["category"] == ["cat facts"]
    assert pooled["timestamp"].astimezone(UTC) == datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)

    deferred = (await rows(ingest_app, schema, "deferred"))[0]
    assert deferred["attempt"] == 5  # sent as the string "5"
    assert deferred["sg_message_id"].startswith(" 14c5d75ce93")  # kept exactly as sent
    assert (deferred["domain"], deferred["from_address"]) == ("example.com", "test@example.com")

    bounces = {r["type"]: r for r in await rows(ingest_app, schema, "bounce")}
    # The docs reuse one sg_event_id for the bounce and the blocked example: both are kept.
    assert set(bounces) == {"bounce", "blocked"}
    assert bounces["blocked"]["bounce_classification"] == "Invalid Address"
    assert bounces["bounce"]["status"] == "5.0.0"

    clicks = await rows(ingest_app, schema, "click")
    documented = next(r for r in clicks if r["url"] == "http://example.com/blog/news.html")
    assert (documented["url_offset_index"], documented["url_offset_type"]) == (0, "html")
    assert documented["category"] == ["category1", "category2"]
    assert documented["custom_args"] == {"unique_arg_key": "unique_arg_value"}
    assert documented["newsletter"]["newsletter_id"] == "1943530"
    assert documented["asm_group_id"] == 1
    without_id = next(r for r in clicks if r["sg_event_id"] is None)
    assert without_id["id"].startswith("sha256:")
    assert without_id["custom_args"] == {"userid": "1123", "template": "welcome"}

    opens = {r["sg_machine_open"]: r for r in await rows(ingest_app, schema, "_open")}
    assert opens[False]["useragent"].startswith("Mozilla/4.0")
    single_send = next(r for r in opens.values() if r["singlesend_id"])
    # A millisecond timestamp is read as milliseconds.
    assert single_send["timestamp"].astimezone(UTC).year == 2020

    status_change = (await rows(ingest_app, schema, "account_status_change"))[0]
    assert status_change["type"] == "compliance_suspend"
    assert status_change["email"] is None
    for row in processed:
        assert row["raw"]["event"] == "processed"
        assert row["received_at"] is not None
