"""Running DDL where `shared.clickhouse_layout` says it goes: on the one server, or, on a
cluster, on each shard directly (without ZooKeeper a cluster runs no `ON CLUSTER` DDL).

The shards are the cluster's entries in `system.clusters` of the server the URL names, read
each time (DDL is rare: once per source and process), so the servers' `<remote_servers>` stay
the one list of shards. The product reaches each at the host and port listed there, with the
URL's user, password and database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.clickhouse import ClickHouse
from shared.clickhouse_layout import Statement


class ClusterNotFound(RuntimeError):
    """The server the URL names knows no cluster of that name; the message says what to fix."""


@dataclass(frozen=True)
class Shard:
    """One server of a cluster, as `system.clusters` lists it."""

    host: str
    port: int
    is_local: bool  # the server the URL names


async def cluster_shards(clickhouse: ClickHouse, cluster: str) -> list[Shard]:
    """Every server (each replica of each shard) of `cluster`, as the URL's server lists it."""
    rows = await clickhouse.execute(
        "SELECT host_name, port, is_local FROM system.clusters WHERE cluster = %(cluster)s "
        "ORDER BY shard_num, replica_num",
        {"cluster": cluster},
    )
    if not rows:
        target = clickhouse.target
        raise ClusterNotFound(
            f"ClickHouse at {target.host}:{target.port} has no cluster {cluster!r} in "
            "system.clusters: name its shards in the servers' <remote_servers>, or correct "
            "?cluster= in WAREHOUSE_URL"
        )
    return [Shard(str(host), int(port), bool(is_local)) for host, port, is_local in rows]


async def run_statements(clickhouse: ClickHouse, statements: Sequence[Statement]) -> None:
    """Run each statement, in order, everywhere it goes: on one server, the server itself; on
    a cluster, a shard's own tables on every shard, the rest on every shard and on the URL's
    server (when it is not one of them), so any of them can take the product's queries."""
    cluster = clickhouse.target.cluster
    if cluster is None:
        for statement in statements:
            await clickhouse.execute(statement.sql)
        return
    shards = await cluster_shards(clickhouse, cluster)
    servers: list[tuple[ClickHouse, bool]] = [
        (clickhouse if shard.is_local else clickhouse.on_server(shard.host, shard.port), True)
        for shard in shards
    ]
    if not any(shard.is_local for shard in shards):
        servers.append((clickhouse, False))
    try:
        for statement in statements:
            for server, is_shard in servers:
                if is_shard or not statement.shards_only:
                    await server.execute(statement.sql)
    finally:
        for server, _ in servers:
            if server is not clickhouse:
                await server.close()
