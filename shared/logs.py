"""JSON logs, one object per line, with secrets scrubbed before anything is written."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Never let this value reach a log line (API keys, tokens)."""
    if len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints request paths, and webhook paths hold the source's token;
    # our own access log (shared.web) logs the route template instead.
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler logs every run of the 20-second reconcile job at INFO; keep its warnings.
    logging.getLogger("apscheduler").setLevel(max(logging.getLevelName(level), logging.WARNING))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
