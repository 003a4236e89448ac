"""SendGrid's published payloads and signature vectors, kept in the repository so a clone with
nothing beside it passes its own tests. README.md in this folder says where each file comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent


def load_test_data_json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))
