"""Contact records built straight from export CSV values carry the same `content_hash` the
listing computes for any other records, so a re-sync tells changed contacts apart whichever
path built the stored row."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.tables import source_tables
from sync_service.contact_records import ContactRecords
from sync_service.object_records import Records, content_hash, with_content_hash

HEADER = ("contact_id", "email", "alternate_emails", "created_at", "num_orders", "birthday")
VALUES = [
    ["c1", "a@example.com", "b@example.com, c@example.com", "2024-01-02T03:04:05Z", "7", ""],
    ["c2", "d@example.com", "", "", "x", "12/31/1990"],
    ["c3", "é@example.com", "", "2024-05-06T00:00:00Z", "", "1990-12-31"],
]


def test_contact_records_carry_the_hash_of_their_json_values() -> None:
    table = source_tables("records_check").objects["recipients"]
    builder = ContactRecords(
        HEADER, {"num_orders": "Number", "birthday": "Date"}, datetime.now(UTC)
    )
    built = Records(ContactRecords.columns, builder.records(VALUES))
    hash_at = built.columns.index("content_hash")
    json_at = [built.columns.index(name) for name in ("alternate_emails", "custom_fields", "raw")]
    without_hash = Records(
        built.columns[:hash_at],
        [record[:hash_at] + record[hash_at + 1 :] for record in built.values],
    )

    recomputed = with_content_hash(table, without_hash)

    assert [record[hash_at] for record in built.values] == [
        record[-1] for record in recomputed.values
    ]
    assert [record[hash_at] for record in built.values] == [
        content_hash([record[i] for i in json_at]) for record in built.values
    ]
    assert len({record[hash_at] for record in built.values}) == len(VALUES)
    # Records that arrive hashed are not hashed again.
    assert with_content_hash(table, built) is built
