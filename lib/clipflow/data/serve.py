"""A loopback HTTP file server for the lifetime of a ``with`` block (the download rule's source)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def serve(
    handler: Callable[..., http.server.BaseHTTPRequestHandler],
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[str]:
    """Answer requests with ``handler`` on ``host`` (loopback only) and yield the base URL;
    stop on exit. ``port=0`` takes a free port, so concurrent jobs on one node never collide."""
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise ValueError(f"refusing to serve on non-loopback host {host!r}")
    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve_directory(directory: str | Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the files of ``directory`` (see :func:`serve`) and yield the base URL."""
    with serve(functools.partial(_QuietHandler, directory=str(directory)), host, port) as url:
        yield url
