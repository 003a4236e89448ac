"""The repository refers to nothing outside it, and the check that says so catches each way out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_self_contained", ROOT / "scripts/check_self_contained.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


checker = _checker()


def _findings(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return [finding.why for finding in checker.check(tmp_path, [path])]


def test_the_repository_refers_to_nothing_outside_it() -> None:
    found = checker.check(ROOT, checker.repository_files(ROOT))
    assert [str(finding) for finding in found] == []


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        # What tests/webhook_helpers.py once did: the samples from a folder beside the clone.
        (
            "tests/helpers.py",
            'SAMPLES = Path(__file__).resolve().parents[2] / "samples/events.json"\n',
            "Path(__file__) walks above it",
        ),
        (
            "tests/helpers.py",
            "HERE = Path(__file__).parent.parent.parent\n",
            "Path(__file__) walks above it",
        ),
        ("scripts/run", "cat ../../vectors.json\n", "'../../vectors.json' climbs out of it"),
        ("README.md", "See ../other/notes.md.\n", "'../other/notes.md' climbs out of it"),
        (
            "bench/run.py",
            'OUT = "/home/someone/results"\n',
            "'/home/someone' is one machine's path",
        ),
    ],
)
def test_each_way_out_is_found(tmp_path: Path, name: str, text: str, why: str) -> None:
    assert _findings(tmp_path, name, text) == [why]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("scripts/test", 'cd "$(dirname "$0")/.."\n'),
        ("tests/sync/helpers.py", 'DATA = Path(__file__).resolve().parents[1] / "data"\n'),
        ("tests/sync/helpers.py", "ROOT = Path(__file__).parent.parent\n"),
        ("docs/a.md", "See ../README.md and ../tests/data/README.md.\n"),
        ("scripts/_postgres.sh", "PG_DIR=$(mktemp -d /tmp/sendgrid-source-pg.XXXXXX)\n"),
    ],
)
def test_paths_inside_the_repository_pass(tmp_path: Path, name: str, text: str) -> None:
    assert _findings(tmp_path, name, text) == []
