"""`scripts/bench`: run the benchmarks, print a table, write bench/results.md.

python -m bench.run --postgres-url postgresql+asyncpg://… [--clickhouse-url clickhouse://…]
    [--quick] [--only ingest|sync|soak|console|completeness|backfill|clickhouse]
    [--console-events N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import backfill, clickhouse_ingest, completeness, console, funnel, ingest, soak, sync

RESULTS = Path(__file__).resolve().parent / "results.md"
CONSOLE_EVENTS = {"postgres": 10_000_000, "sqlite": 1_000_000}
CASES = ["ingest", "sync", "soak", "console", "completeness", "backfill", "clickhouse"]


def machine() -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = platform.processor() or platform.machine()
    gib = memory_kb / 1024 / 1024
    return f"{os.cpu_count()} cores, {gib:.0f} GiB, {cpu}, Python {platform.python_version()}"


Rows = list[tuple[str, str, str]]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--clickhouse-url", help="a ClickHouse server (the clickhouse case)")
    parser.add_argument("--quick", action="store_true", help="about three minutes in all")
    parser.add_argument(
        "--only",
        choices=CASES,
        action="append",
    )
    parser.add_argument(
        "--console-events", type=int, help="stored events of the console case (default 10M)"
    )
    args = parser.parse_args()
    only = set(args.only or CASES)
    if "clickhouse" in only and not args.clickhouse_url:
        parser.error(
            "the clickhouse case needs --clickhouse-url: scripts/bench passes the server it "
            "starts, and did not (see why above); --only names the other cases"
        )
    quick = args.quick
    out = Console()
    sections: list[tuple[str, Rows]] = []
    admin_url: str = args.postgres_url

    async def database(kind: str, name: str, workdir: str) -> str:
        if kind == "sqlite":
            return f"sqlite+aiosqlite:///{workdir}/{name}.db"
        await fresh_database(admin_url, name)
        return admin_url.rsplit("/", 1)[0] + f"/{name}"

    max_rate = 0.0
    if "ingest" in only or "soak" in only:
        batches = 40 if quick else 300
        for kind, label in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
            if kind == "sqlite" and "ingest" not in only:
                continue
            with tempfile.TemporaryDirectory() as workdir:
                url = await database(kind, "bench_ingest", workdir)
                out.print(f"[bold]Ingest, {label}[/]: {batches} batches of 1,000 events …")
                figures = await ingest.run(
                    url,
                    Path(workdir),
                    batches=batches,
                    senders=8,
                    # The levers are measured with the ingest case, not for the soak's rate.
                    lever_batches=0 if "ingest" not in only else 20 if quick else 100,
                )
                sections.append((f"Ingest, {label}", ingest.summary(figures)))
                if kind == "postgres":
                    max_rate = figures.events_per_s
    if "sync" in only:
        for kind, label in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
            contacts = 20_000 if quick else (1_000_000 if kind == "postgres" else 100_000)
            with tempfile.TemporaryDirectory() as workdir:
                url = await database(kind, "bench_sync", workdir)
                out.print(f"[bold]Sync, {label}[/]: {contacts:,} contacts …")
                sync_figures = await sync.run(url, Path(workdir), contacts=contacts)
                sections.append((f"Sync, {label}", sync.summary(sync_figures)))
        if args.clickhouse_url:
            contacts = 20_000 if quick else 1_000_000
            with tempfile.TemporaryDirectory() as workdir:
                url = await database("postgres", "bench_sync_clickhouse", workdir)
                out.print(f"[bold]Sync, ClickHouse[/]: {contacts:,} contacts …")
                ch_figures = await sync.run_clickhouse(
                    url, args.clickhouse_url, Path(workdir), contacts=contacts
                )
                sections.append(("Sync, ClickHouse", sync.summary_clickhouse(ch_figures)))
    if "soak" in only:
        seconds = 30 if quick else 180
        with tempfile.TemporaryDirectory() as workdir:
            url = await database("postgres", "bench_soak", workdir)
            out.print(f"[bold]Soak, PostgreSQL[/]: {seconds} s at 80% of {max_rate:,.0f}/s …")
            soak_figures = await soak.run(
                url,
                Path(workdir),
                events_per_s=0.8 * max_rate,
                seconds=seconds,
                contacts=5_000 if quick else 50_000,
            )
            sections.append(("Soak, PostgreSQL", soak.summary(soak_figures)))
    if "console" in only:
        # SQLite writes the generated events several times slower: a tenth as many.
        sizes = {"postgres": 1_000_000, "sqlite": 100_000} if quick else CONSOLE_EVENTS
        for kind, label in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
            events = args.console_events or sizes[kind]
            with tempfile.TemporaryDirectory() as workdir:
                url = await database(kind, "bench_console", workdir)
                out.print(f"[bold]Console aggregates, {label}[/]: {events:,} stored events …")
                figures_c = await console.run(url, events=events)
                sections.append((f"Console aggregates, {label}", console.summary(figures_c)))
    if "completeness" in only:
        events = 1_000_000 if quick else 10_000_000
        with tempfile.TemporaryDirectory() as workdir:
            url = await database("postgres", "bench_completeness", workdir)
            out.print(f"[bold]Completeness, PostgreSQL[/]: 30 days over {events:,} stored events …")
            found = await completeness.run(url, Path(workdir), events=events)
            sections.append(("Completeness, PostgreSQL", completeness.summary(found)))
    if "backfill" in only:
        messages = 2_000 if quick else 20_000
        with tempfile.TemporaryDirectory() as workdir:
            url = await database("postgres", "bench_backfill", workdir)
            out.print(f"[bold]Backfill, PostgreSQL[/]: {messages:,} messages from Email Logs …")
            found_b = await backfill.run(url, Path(workdir), messages=messages)
            sections.append(("Backfill from Email Logs, PostgreSQL", backfill.summary(found_b)))
    if "clickhouse" in only:
        with tempfile.TemporaryDirectory() as workdir:
            url = await database("postgres", "bench_clickhouse", workdir)
            batches = 40 if quick else 200
            out.print(f"[bold]Ingest, ClickHouse[/]: {batches} batches of 1,000 events …")
            found_ch = await clickhouse_ingest.run(
                url,
                args.clickhouse_url,
                Path(workdir),
                batches=batches,
                receiver_batches=30 if quick else 100,
                rounds=1 if quick else 2,
            )
            sections.append(("Ingest, ClickHouse", clickhouse_ingest.summary(found_ch)))
        events = 1_000_000 if quick else 10_000_000
        with tempfile.TemporaryDirectory() as workdir:
            url = await database("postgres", "bench_funnel", workdir)
            out.print(f"[bold]Funnel, ClickHouse and PostgreSQL[/]: {events:,} stored events …")
            found_f = await funnel.run(url, args.clickhouse_url, events=events)
            sections.append(("Funnel, ClickHouse against PostgreSQL", funnel.summary(found_f)))
    _report(out, sections, quick)


def _report(console: Console, sections: list[tuple[str, Rows]], quick: bool) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"`scripts/bench{' --quick' if quick else ''}`. "
        "Every ratio compares figures measured in this run.",
        "",
    ]
    for label, rows in sections:
        table = Table(title=label)
        for column in ("measure", "value", "ratio / target"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        lines += [f"## {label}", "", "| measure | value | ratio / target |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        lines.append("")
    RESULTS.write_text("\n".join(lines))
    console.print(f"written to {RESULTS}")


async def fresh_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await connection.execute(f"CREATE DATABASE {name}")
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
