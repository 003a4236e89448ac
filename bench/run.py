"""`scripts/bench`: run the benchmarks, print a table, write bench/results.md.

python -m bench.run --postgres-url postgresql+asyncpg://… [--quick] [--only ingest]
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

from bench import ingest

RESULTS = Path(__file__).resolve().parent / "results.md"


def machine() -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = platform.processor() or platform.machine()
    gib = memory_kb / 1024 / 1024
    return f"{os.cpu_count()} cores, {gib:.0f} GiB, {cpu}, Python {platform.python_version()}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--only", choices=["ingest"], default=None)
    args = parser.parse_args()
    batches = 40 if args.quick else 300
    console = Console()
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    for label, url_for in (
        ("Ingest, PostgreSQL", lambda d: args.postgres_url.rsplit("/", 1)[0] + "/bench_ingest"),
        ("Ingest, SQLite", lambda d: f"sqlite+aiosqlite:///{d}/bench.db"),
    ):
        with tempfile.TemporaryDirectory() as workdir:
            url = url_for(workdir)
            if url.startswith("postgresql"):
                await _fresh_database(args.postgres_url, "bench_ingest")
            console.print(f"[bold]{label}[/]: {batches} batches of {ingest.BATCH_SIZE} events …")
            figures = await ingest.run(url, Path(workdir), batches=batches, senders=8)
            sections.append((label, ingest.summary(figures)))
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"`scripts/bench{' --quick' if args.quick else ''}`. "
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


async def _fresh_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await connection.execute(f"CREATE DATABASE {name}")
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
