"""Export files as rows: gzip sniffing and CSV decoded as it streams in."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest

from sync_service.errors import ExportFailed
from sync_service.export_files import Row, inflate_if_gzip, iterate_csv_value_batches
from tests.fake_sendgrid.payloads import EXPORT_HEADER, export_csv_row
from tests.sync.fakes import rows_in


async def in_chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def rows_of(data: bytes, chunk_size: int = 7) -> list[Row]:
    batches = iterate_csv_value_batches(in_chunks(data, chunk_size))
    return [row async for batch in batches for row in rows_in(batch)]


CSV = (
    EXPORT_HEADER
    + "\r\n"
    + export_csv_row("47d23ab0-d895-4359-a0d1-ffc7a6fc7e70", "abcd@gmail.com", "Ab")
    + export_csv_row("5a1e9e0d-6c1f-4b7e-8d3a-0f6b2f1c9e11", "efgh@example.com", "Ef")
)


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 4096])
async def test_gzip_and_plain_give_the_same_rows_at_any_chunking(chunk_size: int) -> None:
    plain = await rows_of(CSV.encode(), chunk_size)
    zipped = await rows_of(gzip.compress(CSV.encode()), chunk_size)

    assert plain == zipped
    assert [row["contact_id"] for row in plain] == [
        "47d23ab0-d895-4359-a0d1-ffc7a6fc7e70",
        "5a1e9e0d-6c1f-4b7e-8d3a-0f6b2f1c9e11",
    ]
    first = plain[0]
    assert len(first) == 18
    assert first["email"] == "abcd@gmail.com"
    assert first["address_line_1"] == "street address, P.O. box"
    assert first["postal_code"] == "94063"
    assert first["alternate_emails"] == ""


async def test_quoted_newlines_quotes_and_non_ascii_survive_one_byte_chunks() -> None:
    text = (
        "EMAIL,FIRST_NAME,NOTES,CONTACT_ID\n"
        'zoe@example.com,Zoë,"line one\nline two, with ""quotes""",c-1\n'
        "ana@example.com,Ana,,c-2\n"
    )

    rows = await rows_of(("\ufeff" + text).encode(), chunk_size=1)

    assert rows == [
        {
            "email": "zoe@example.com",
            "first_name": "Zoë",
            "notes": 'line one\nline two, with "quotes"',
            "contact_id": "c-1",
        },
        {"email": "ana@example.com", "first_name": "Ana", "notes": "", "contact_id": "c-2"},
    ]


async def test_a_last_row_without_a_newline_is_kept() -> None:
    rows = await rows_of(b"EMAIL,CONTACT_ID\r\na@example.com,c-1", chunk_size=3)

    assert rows == [{"email": "a@example.com", "contact_id": "c-1"}]


async def test_concatenated_gzip_members_are_all_read() -> None:
    data = gzip.compress(b"EMAIL,CONTACT_ID\na@example.com,c-1\n") + gzip.compress(
        b"b@example.com,c-2\n"
    )

    rows = await rows_of(data, chunk_size=5)

    assert [row["contact_id"] for row in rows] == ["c-1", "c-2"]


async def test_a_truncated_gzip_file_fails_instead_of_giving_partial_rows() -> None:
    data = gzip.compress(CSV.encode())

    with pytest.raises(ExportFailed, match="ended in the middle"):
        await rows_of(data[: len(data) // 2])


async def test_an_empty_file_has_no_rows() -> None:
    assert await rows_of(b"") == []
    assert [chunk async for chunk in inflate_if_gzip(in_chunks(b"", 4))] == []


async def test_rows_stream_out_before_the_file_is_read() -> None:
    consumed = 0
    total_rows = 5000

    async def counting_chunks() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield (EXPORT_HEADER + "\r\n").encode()
        for i in range(total_rows):
            consumed += 1
            yield export_csv_row(f"id-{i}", f"user{i}@example.com", "Ab").encode()

    batches = iterate_csv_value_batches(counting_chunks())
    first = await anext(batches)

    assert [row["contact_id"] for row in rows_in(first)] == ["id-0"]
    assert consumed <= 2  # the parser held at most the chunk it was working on
    rest = [len(batch.records) async for batch in batches]
    assert sum(rest) == total_rows - 1
