"""Serving an app for real over HTTP on a free port of 127.0.0.1 with uvicorn, its lifespan
included: in the test's own event loop (`served`), or in a thread with a loop of its own
(`served_in_thread`, for tests whose caller runs its own loop, such as Schemathesis)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

_START_SECONDS = 10.0


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"http://{host}:{port}"


def _server(app: FastAPI) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on"))


@contextlib.asynccontextmanager
async def served(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """`app` served on `sock` in this event loop until the block ends."""
    server = _server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(int(_START_SECONDS / 0.01)):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        if task.done():
            task.result()  # raises what stopped it
        task.cancel()
        raise RuntimeError(f"uvicorn did not start within {_START_SECONDS:.0f} s")
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def served_in_thread(app: FastAPI) -> Iterator[str]:
    """`app` served in a thread of its own until the block ends; yields its base URL."""
    sock = listening_socket()
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_SECONDS
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        server.should_exit = True
        raise RuntimeError(f"uvicorn did not start within {_START_SECONDS:.0f} s")
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
