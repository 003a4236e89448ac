"""The account's contacts and the export files made of them.

Contacts are either explicit (`Contact`s a test sets and changes between syncs) or generated
(`GeneratedContacts`: a million contacts cost a counter, not a million objects, and their
files are generated row by row). Either way the files an export job serves are made from a
snapshot taken when the job starts (`export_builder`), as SendGrid does: a change after that
shows in the next export, not in this one.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from tests.fake_sendgrid.payloads import EXPORT_HEADER, JSON

# The generated contacts' one custom field, a Number.
GENERATED_FIELDS = [{"id": "w1", "name": "num_orders", "field_type": "Number"}]
_GENERATED_HEADER = f"{EXPORT_HEADER},NUM_ORDERS"


@dataclass
class Contact:
    contact_id: str
    email: str
    first_name: str
    custom: dict[str, str] = field(default_factory=dict)

    def csv_row(self, custom_fields: list[JSON]) -> str:
        """Its row under the export header, with quoted commas and alternate emails as a real
        export has them."""
        return ",".join(
            [
                self.email,
                self.first_name,
                "Cd",
                '"street address, P.O. box"',
                *[""] * 5,
                '"a@x.example,b@x.example"',
                *[""] * 5,
                "2026-01-05T10:00:00Z",
                "2026-11-20T08:30:00Z",
                self.contact_id,
                *[self.custom.get(str(f["name"]), "") for f in custom_fields],
            ]
        )


def generated_contact_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


@dataclass
class GeneratedContacts:
    """`count` contacts, user{n}@example.com; after `edit`, every `edited_every`-th one carries
    the current `revision` in its name, order count and updated_at."""

    count: int
    revision: int = 0
    edited_every: int = 100

    def __len__(self) -> int:
        return self.count

    def edit(self, share: float) -> int:
        """Edit every (1/share)-th contact; returns how many were edited."""
        self.revision += 1
        self.edited_every = max(1, round(1 / share))
        return len(range(0, self.count, self.edited_every))

    def gzip_file(self, part: int, files: int) -> Iterator[bytes]:
        """Export file `part` of `files` as gzip, generated in chunks of a thousand rows (the
        benchmark's hot loop: keep it as plain as this)."""
        compressor = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
        yield compressor.compress((_GENERATED_HEADER + "\r\n").encode())
        lines: list[str] = []
        every, revision = self.edited_every, self.revision
        for n in range(part, self.count, files):
            if revision and n % every == 0:
                name, orders = f"First{n}-r{revision}", n % 17 + revision
                updated = f"2026-11-27T{revision % 24:02d}:{revision // 24 % 60:02d}:00Z"
            else:
                name, orders, updated = f"First{n}", n % 17, "2026-11-20T08:30:00Z"
            lines.append(
                f'user{n}@example.com,{name},Last{n},"{n} Main St, Apt {n % 40}",,Springfield,'
                f"CA,94063,USA,,,,,,,2026-01-05T10:00:00Z,{updated},{generated_contact_id(n)},"
                f"{orders}\r\n"
            )
            if len(lines) == 1000:
                yield compressor.compress("".join(lines).encode())
                lines = []
        yield compressor.compress("".join(lines).encode()) + compressor.flush()


Contacts = list[Contact] | GeneratedContacts


def _explicit_file(
    contacts: list[Contact], custom_fields: list[JSON], part: int, files: int, gzipped: bool
) -> bytes:
    names = [str(f["name"]).upper() for f in custom_fields]
    lines = [",".join([EXPORT_HEADER, *names])]
    lines += [c.csv_row(custom_fields) for c in contacts[part::files]]
    data = ("\r\n".join(lines) + "\r\n").encode()
    return gzip.compress(data) if gzipped else data


def export_builder(
    contacts: Contacts, custom_fields: list[JSON], files: int, gzipped: bool
) -> Callable[[], list[bytes]]:
    """A snapshot of the contacts now, and a function making its `files` export files (run in
    a thread while the job is pending). Generated files are always gzip, as SendGrid's are;
    explicit ones are plain when `gzipped` is off, to test that SendGrid's plain files too are
    read."""
    if isinstance(contacts, GeneratedContacts):
        frozen = replace(contacts)
        return lambda: [b"".join(frozen.gzip_file(part, files)) for part in range(files)]
    rows, fields = list(contacts), [dict(f) for f in custom_fields]
    return lambda: [_explicit_file(rows, fields, part, files, gzipped) for part in range(files)]
