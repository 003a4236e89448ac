"""`sendgrid-source up`: both services as child processes, started and stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from rich.console import Console

# How long `up` waits for a service to stop after SIGTERM before it kills it.
STOP_GRACE_SECONDS = 30.0


class Supervisor:
    """Runs both services as child processes and stops them together."""

    def __init__(self, errors: Console) -> None:
        self.errors = errors
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_signal: int | None = None

    def forward(self, signum: int, frame: FrameType | None) -> None:
        # A second SIGINT reaches uvicorn as a second Ctrl-C: it stops waiting for requests.
        self.stop_signal = self.stop_signal or signum
        for child in self.children.values():
            child.send_signal(signum)

    def start(self, name: str) -> None:
        if self.stop_signal is not None:
            return
        # Their own process group: a terminal's Ctrl-C reaches them once, through forward().
        child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "sendgrid_source", name],
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        self.children[name] = child
        if self.stop_signal is not None:  # the signal came while it was being started
            child.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        """Block until a service exits; stop the other; return the exit code for `up`."""
        while self.stop_signal is None and all(c.poll() is None for c in self.children.values()):
            time.sleep(0.2)
        if self.stop_signal is None:
            name, child = next((n, c) for n, c in self.children.items() if c.returncode is not None)
            self.errors.print(
                f"the {name} service stopped (exit code {child.returncode}); stopping the other",
                style="red",
            )
            for other in self.children.values():
                other.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        codes = [child.returncode for child in self.children.values()]
        if self.stop_signal is not None and not any(codes):
            return 0
        return next((code for code in codes if code > 0), 1)
