"""A connection to a ClickHouse server for asyncio code: a few clickhouse-driver clients, each
call run in a thread.

clickhouse-driver speaks the native protocol and works with Debian's ClickHouse 18.16 as well as
current releases (the official clickhouse-connect does not work with 18.16). Its client is
synchronous and not safe to share between threads, so each call takes one client from a small
pool and runs in a worker thread; the event loop never waits on the network.

Parameters are substituted by the client (`%(name)s`), which old servers need: they know no
server-side query parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from clickhouse_driver import Client

SCHEME = "clickhouse://"
DEFAULT_PORT = 9000  # the native protocol's


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the server is: `clickhouse://[user[:password]@]host[:port][/database]`."""

    host: str
    port: int
    database: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> ClickHouseTarget:
        if not url.startswith(SCHEME):
            raise ValueError(f"{url.split('://', 1)[0]!r} is not clickhouse://")
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("names no host (clickhouse://host:port/database)")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        database = parts.path.strip("/") or "default"
        if "/" in database:
            raise ValueError(f"{database!r} is not one database name")
        return cls(
            parts.hostname,
            port,
            database,
            unquote(parts.username or "default"),
            unquote(parts.password or ""),
        )


class ClickHouse:
    """Statements to one ClickHouse server; `size` of them at once at most."""

    def __init__(self, url: str, *, size: int = 2) -> None:
        self.target = ClickHouseTarget.from_url(url)
        self._size = size
        self._idle: asyncio.LifoQueue[Client] | None = None

    def _client(self) -> Client:
        target = self.target
        return Client(
            host=target.host,
            port=target.port,
            database=target.database,
            user=target.user,
            password=target.password,
            # A dead server fails the write quickly (answered 503, so SendGrid resends).
            connect_timeout=5,
            send_receive_timeout=60,
        )

    async def _run(self, call: str, sql: str, argument: Any) -> Any:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for _ in range(self._size):
                self._idle.put_nowait(self._client())
        client = await self._idle.get()
        try:
            if call == "insert":
                return await asyncio.to_thread(client.execute, sql, argument)
            return await asyncio.to_thread(client.execute, sql, argument or None)
        except BaseException:
            # A client whose call failed midway may hold a half-read answer: start afresh.
            client.disconnect()
            client = self._client()
            raise
        finally:
            self._idle.put_nowait(client)

    async def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for DDL)."""
        rows: list[tuple[Any, ...]] = await self._run("execute", sql, params)
        return rows

    async def insert(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`INSERT INTO db.table (columns) VALUES` with `rows`, sent as one block; returns once
        the server acknowledged it."""
        await self._run("insert", sql, list(rows))

    async def close(self) -> None:
        if self._idle is None:
            return
        while not self._idle.empty():
            self._idle.get_nowait().disconnect()
        self._idle = None
