"""Contacts export files as rows: gzip or plain, CSV decoded as it streams in.

SendGrid documents gzip-compressed CSV but has served plain files too, so the first two bytes
decide. Nothing here holds more than a chunk and one CSV record, whatever the file size.
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from sync_service.errors import ExportFailed

GZIP_MAGIC = b"\x1f\x8b"
# Cap on what one inflate step may produce, so a highly compressible chunk stays small.
_INFLATE_STEP = 1 << 20

Row = dict[str, str]


class _GzipStream:
    """Inflates gzip incrementally, including files made of several concatenated members."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        self._between = b""  # bytes after a finished member, not yet known to start another
        self._trailing = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._trailing:
            if self._inflater.eof:
                data = self._between + data
                if len(data) < len(GZIP_MAGIC):
                    self._between = data
                    return
                self._between = b""
                if not data.startswith(GZIP_MAGIC):
                    # Padding after the last member; gzip(1) ignores it too.
                    self._trailing = True
                    return
                self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            try:
                out = self._inflater.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                raise ExportFailed(f"an export file is not valid gzip: {exc}") from exc
            if out:
                yield out
            data = (
                self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            )

    def finish(self) -> None:
        if not self._inflater.eof:
            raise ExportFailed("an export file ended in the middle of its gzip stream")


async def inflate_if_gzip(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Pass plain bytes through; inflate when the stream starts with the gzip magic bytes."""
    iterator = aiter(chunks)
    head = b""
    async for chunk in iterator:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        async for chunk in iterator:
            yield chunk
        return
    stream = _GzipStream()
    for out in stream.feed(head):
        yield out
    async for chunk in iterator:
        for out in stream.feed(chunk):
            yield out
    stream.finish()


class _RecordSplitter:
    """Cuts text into whole CSV records.

    A newline ends a record only outside quotes, and with doubled-quote escaping that is
    exactly when the record so far holds an even number of quote characters.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._quotes = 0

    def feed(self, text: str) -> list[str]:
        records: list[str] = []
        start = 0
        while (end := text.find("\n", start)) >= 0:
            self._take(text[start : end + 1])
            if self._quotes % 2 == 0:
                records.append("".join(self._parts))
                self._parts, self._quotes = [], 0
            start = end + 1
        if start < len(text):
            self._take(text[start:])
        return records

    def finish(self) -> list[str]:
        rest = "".join(self._parts)
        self._parts, self._quotes = [], 0
        return [rest] if rest.strip() else []

    def _take(self, piece: str) -> None:
        self._parts.append(piece)
        self._quotes += piece.count('"')


@dataclass(frozen=True)
class CsvBatch:
    """Records of one export file as lists of values, in the order of `header` (lower-cased
    column names); short records are padded with empty strings."""

    header: tuple[str, ...]
    records: list[list[str]]


async def iterate_csv_value_batches(chunks: AsyncIterable[bytes]) -> AsyncIterator[CsvBatch]:
    """Records of one export file, a batch per chunk received: one async step per chunk
    rather than per record, and no dict per record for callers that index by position."""
    # A stray invalid byte in one contact must not fail every future sync of the account.
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    splitter = _RecordSplitter()
    header: tuple[str, ...] | None = None

    def batch_of(lines: list[str]) -> CsvBatch | None:
        nonlocal header
        records: list[list[str]] = []
        try:
            for values in csv.reader(lines, strict=True):
                if not values or values == [""]:
                    continue
                if header is None:
                    header = tuple(name.strip().lower() for name in values)
                    continue
                if len(values) != len(header):
                    # Cells beyond the header have no name to be stored under; kept in
                    # `raw` they would need one, so they are cut (SendGrid never sends them).
                    values = (values + [""] * (len(header) - len(values)))[: len(header)]
                records.append(values)
        except csv.Error as exc:
            raise ExportFailed(f"an export file is not valid CSV: {exc}") from exc
        return CsvBatch(header, records) if records and header is not None else None

    async for chunk in inflate_if_gzip(chunks):
        if batch := batch_of(splitter.feed(decoder.decode(chunk))):
            yield batch
    tail = decoder.decode(b"", final=True)
    if batch := batch_of(splitter.feed(tail) + splitter.finish()):
        yield batch
