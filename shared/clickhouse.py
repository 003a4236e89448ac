"""A connection to a ClickHouse server for asyncio code: a few clickhouse-driver clients, each
call run in a thread.

clickhouse-driver speaks the native protocol and works with Debian's ClickHouse 18.16 as well as
current releases (the official clickhouse-connect does not work with 18.16). Its client is
synchronous and not safe to share between threads, so each call takes one client from a small
pool and runs in a worker thread; the event loop never waits on the network.

Parameters are substituted by the client (`%(name)s`), which old servers need: they know no
server-side query parameters.

With `?cluster=NAME` the URL names a cluster of shards the server knows (its
`<remote_servers>`): the tables are laid out over the shards (`shared.clickhouse_layout`),
and inserts through its Distributed tables are acknowledged only once every shard wrote its
rows (`insert_distributed_sync`), as SendGrid's 2xx promises.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from clickhouse_driver import Client

SCHEME = "clickhouse://"
DEFAULT_PORT = 9000  # the native protocol's

# A cluster name goes into DDL (`Distributed('name', ...)`) and system.clusters look-ups.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the server is:
    `clickhouse://[user[:password]@]host[:port][/database][?cluster=NAME]`."""

    host: str
    port: int
    database: str
    user: str
    password: str
    cluster: str | None = None

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
            _cluster(parts.query),
        )

    def at(self, host: str, port: int) -> ClickHouseTarget:
        """The same credentials and database on another server of the cluster (one shard)."""
        return replace(self, host=host, port=port, cluster=None)


def _cluster(query: str) -> str | None:
    try:
        parameters = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"has a query {query!r} that is not name=value pairs") from None
    unknown = sorted(set(parameters) - {"cluster"})
    if unknown:
        raise ValueError(f"has unknown parameters {unknown} (only ?cluster=NAME is read)")
    names = parameters.get("cluster")
    if names is None:
        return None
    if len(names) != 1 or not _IDENTIFIER.match(names[0]):
        raise ValueError(
            f"names the cluster {'&'.join(names)!r}: give one name of letters, digits and _, "
            "not starting with a digit, as in the servers' <remote_servers>"
        )
    return names[0]


class ClickHouse:
    """Statements to one ClickHouse server; `size` of them at once at most."""

    def __init__(self, url: str | ClickHouseTarget, *, size: int = 2) -> None:
        self.target = url if isinstance(url, ClickHouseTarget) else ClickHouseTarget.from_url(url)
        self._size = size
        self._idle: asyncio.LifoQueue[Client] | None = None

    def on_server(self, host: str, port: int) -> ClickHouse:
        """A connection of its own to another server of the cluster (one at a time)."""
        return type(self)(self.target.at(host, port), size=1)

    def _client(self) -> Client:
        target = self.target
        # Through a Distributed table an insert is acknowledged only once every shard wrote
        # its part (by default the server queues it on disk and acknowledges at once).
        settings = {"insert_distributed_sync": 1} if target.cluster else {}
        return Client(
            host=target.host,
            port=target.port,
            database=target.database,
            user=target.user,
            password=target.password,
            # A dead server fails the write quickly (answered 503, so SendGrid resends).
            connect_timeout=5,
            send_receive_timeout=60,
            settings=settings,
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
