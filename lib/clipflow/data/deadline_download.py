"""img2dataset's downloader with a total deadline per url and a pixel limit.

img2dataset's ``timeout`` bounds each socket operation, so a server that sends one byte per
second keeps a url (and its shard) going for ever; and its resizer decodes an image before it
checks the size, so a decompression bomb costs gigabytes. :func:`deadline_downloader` makes
img2dataset's ``download`` use :class:`DeadlineDownloader`, whose per-url download is
:func:`download_image_within_deadline`; img2dataset still does the rest (threads, resizing,
writing shards and their stats).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib
import io
import os
import socket
import threading
import unittest.mock
import urllib.request
from collections.abc import Iterator
from typing import Any

from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import
import img2dataset.downloader  # noqa: E402
from img2dataset.downloader import Downloader  # noqa: E402

# the failure reason of an image over PIL's decompression-bomb limit, as packing local images
# gives it (clipflow.data.ingest), so the report counts both alike
OVERSIZED_IMAGE = "unreadable image (DecompressionBombError)"


class _DeadlineConnections:
    """The connections of one url's download (redirects included), shut down when its deadline
    passes: a blocked read (or TLS handshake) then returns at once, however slowly the server
    trickles bytes. Each socket is watched through a duplicate of its descriptor, made as soon
    as it connects, since wrapping it in TLS detaches the original socket object."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.expired = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shut(self._sockets[-1])

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the connection is already gone
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnection:
    """Mixed into an ``http.client`` connection: its socket is watched from the moment it
    connects (http.client creates it through ``_create_connection``)."""

    def __init__(self, *args: Any, watch: _DeadlineConnections, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create = self._create_connection

        def create_watched(*create_args: Any, **create_kwargs: Any) -> socket.socket:
            sock = create(*create_args, **create_kwargs)
            watch.add(sock)
            return sock

        self._create_connection = create_watched


class _WatchedHTTPConnection(_WatchedConnection, http.client.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, http.client.HTTPSConnection):
    pass


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: _DeadlineConnections) -> None:
        super().__init__()
        self._watch = watch

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_WatchedHTTPConnection, watch=self._watch), req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _DeadlineConnections) -> None:
        super().__init__()
        self._watch = watch

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_WatchedHTTPSConnection, watch=self._watch)
        return self.do_open(connection, req, context=self._context)


def download_image_within_deadline(
    row: tuple[int, str],
    timeout: float,
    user_agent_token: str | None,
    disallowed_header_directives: set[str] | None,
) -> tuple[int, io.BytesIO | None, str | None]:
    """img2dataset's ``download_image`` (same request, headers and X-Robots-Tag check), where
    ``timeout`` also bounds the whole download, not only each socket operation (a server that
    sends one byte per second never trips the latter), and an image whose header declares more
    pixels than PIL's decompression-bomb limit is refused before anything decodes it."""
    from img2dataset.downloader import is_disallowed

    key, url = row
    user_agent = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
    if user_agent_token:
        user_agent += f" (compatible; {user_agent_token}; +https://github.com/rom1504/img2dataset)"
    watch = _DeadlineConnections()
    opener = urllib.request.build_opener(_WatchedHTTPHandler(watch), _WatchedHTTPSHandler(watch))
    deadline = threading.Timer(timeout, watch.expire)
    deadline.daemon = True
    deadline.start()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": user_agent})
        with opener.open(request, timeout=timeout) as response:
            if disallowed_header_directives and is_disallowed(
                response.headers, user_agent_token, disallowed_header_directives
            ):
                return key, None, "Use of image disallowed by X-Robots-Tag directive"
            data = response.read()
    except Exception as error:  # as img2dataset: any failure is the url's error message
        return key, None, _deadline_message(timeout) if watch.expired else str(error)
    finally:
        deadline.cancel()
        watch.close()
    if watch.expired:  # a server that sends no length ends the body when its socket is shut
        return key, None, _deadline_message(timeout)
    try:
        Image.open(io.BytesIO(data)).close()  # reads the header only; checks the pixel count
    except Image.DecompressionBombError:
        return key, None, OVERSIZED_IMAGE
    except Exception:  # not a format PIL knows: img2dataset's decoder judges it
        pass
    return key, io.BytesIO(data), None


def _deadline_message(timeout: float) -> str:
    return f"download took longer than the {timeout} s timeout"


class DeadlineDownloader(Downloader):
    """img2dataset's shard downloader with :func:`download_image_within_deadline` as its
    per-url download. img2dataset runs it in spawned processes, which import img2dataset
    afresh, so the download function is swapped in there, when a shard starts."""

    def __call__(self, row: Any) -> tuple[bool, Any]:
        img2dataset.downloader.download_image = download_image_within_deadline
        return super().__call__(row)


@contextlib.contextmanager
def deadline_downloader() -> Iterator[None]:
    """Within the block, img2dataset's ``download`` builds a :class:`DeadlineDownloader`."""
    # the module, not the function `img2dataset.main` that the package exports under its name
    main_module = importlib.import_module("img2dataset.main")
    with unittest.mock.patch.object(main_module, "Downloader", DeadlineDownloader):
        yield
