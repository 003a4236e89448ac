"""Fail when a file of the repository refers to a path outside it.

A clone with nothing beside it must install, run and pass its tests, so no file may read from a
sibling folder or from one machine's paths. This looks for the three ways such a reference is
written: a relative path that climbs above the repository (`../../x`), a `Path(__file__)` walked
up past the repository's root (`.parents[N]`, `.parent.parent`), and an absolute path into a
home or work folder. Run by scripts/test; exits 1 and names each offending line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLIMBING = re.compile(r"(?<![\w.])(?:\.\./)+[\w.\-/]*")
FILE_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
FILE_PARENT_CHAIN = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent)+)\b")
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|root|Users|mnt)/[\w.\-]+")
# The check and its test name the patterns they look for.
EXAMPLES = frozenset({"scripts/check_self_contained.py", "tests/test_self_contained.py"})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}: {self.text.strip()}"


def repository_files(root: Path) -> list[Path]:
    """Tracked files and new ones not ignored: what a commit would carry."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    return [root / name for name in listed.decode().split("\0") if name]


def _outside(root: Path, target: Path) -> bool:
    resolved = target.resolve()
    return resolved != root and root not in resolved.parents


def findings_in(root: Path, path: Path, text: str) -> Iterator[Finding]:
    relative = path.relative_to(root).as_posix()
    depth = len(path.relative_to(root).parts) - 1  # folders between the root and the file
    for number, line in enumerate(text.splitlines(), start=1):
        for match in CLIMBING.finditer(line):
            target = match.group(0).rstrip(".")  # a sentence's full stop is not part of it
            if _outside(root, path.parent / target):
                yield Finding(relative, number, line, f"{target!r} climbs out of it")
        for match in FILE_PARENTS.finditer(line):
            # parents[0] is the file's folder: parents[depth] is the root itself.
            if int(match.group(1)) > depth:
                yield Finding(relative, number, line, "Path(__file__) walks above it")
        for match in FILE_PARENT_CHAIN.finditer(line):
            if match.group(1).count(".parent") - 1 > depth:
                yield Finding(relative, number, line, "Path(__file__) walks above it")
        for match in MACHINE_PATH.finditer(line):
            yield Finding(relative, number, line, f"{match.group(0)!r} is one machine's path")


def check(root: Path, files: Iterable[Path]) -> list[Finding]:
    found: list[Finding] = []
    for path in files:
        if path.relative_to(root).as_posix() in EXAMPLES or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files hold no paths a program follows
        found.extend(findings_in(root, path, text))
    return found


def main() -> int:
    found = check(ROOT, repository_files(ROOT))
    for finding in found:
        print(finding, file=sys.stderr)
    if found:
        print(
            f"{len(found)} reference(s) to paths outside the repository: a clean clone with "
            "nothing beside it would fail. Copy what is needed into the repository (test data "
            "goes in tests/data/).",
            file=sys.stderr,
        )
        return 1
    print("no file refers to a path outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
