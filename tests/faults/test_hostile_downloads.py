"""Items 5 and 6: over HTTP, a decompression bomb is refused and counted without being decoded,
and a server that trickles bytes cannot stall a url past the configured timeout."""

import http.server
import io
import struct
import time
import zlib

import pytest
from PIL import Image

from clipflow.data.deadline_download import OVERSIZED_IMAGE, download_image_within_deadline
from clipflow.data.download import DownloadOptions, download_stats, run_img2dataset, write_url_list
from clipflow.data.serve import serve

TRICKLE_SECONDS = 60  # a trickling response lasts this long, then its handler stops by itself


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(side: int = 14_000) -> bytes:
    """A valid all-black RGB PNG of side x side pixels (196 M at 14 000: over PIL's bomb limit
    of 179 M; 590 MB decoded) that is a few hundred kB on the wire."""
    # a full flush makes each row's deflate output independent of the rows before it, so one
    # compressed row repeats; the stream then ends with an empty final block and its checksum
    compressor, row = zlib.compressobj(9), bytes(1 + 3 * side)
    first = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side):
        checksum = zlib.adler32(row, checksum)
    data = first + again * (side - 1) + b"\x03\x00" + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


class HostileHandler(http.server.BaseHTTPRequestHandler):
    payloads: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/trickle.png":  # the headers at once, then the body byte by byte
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.flush()
            self._trickle(bytes(TRICKLE_SECONDS))
            return
        if self.path == "/trickle-headers.png":  # even the headers byte by byte
            self._trickle(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * TRICKLE_SECONDS)
            return
        body = self.payloads[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, data: bytes) -> None:
        """One byte a second (under any per-read timeout), for at most TRICKLE_SECONDS."""
        for byte in data[:TRICKLE_SECONDS]:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(1.0)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    HostileHandler.payloads = {"/bomb.png": decompression_bomb(), "/good.png": _small_png()}
    with serve(HostileHandler) as base_url:  # 127.0.0.1 only
        yield base_url


@pytest.mark.parametrize("path", ["trickle.png", "trickle-headers.png"])
def test_trickling_server_is_cut_off_at_the_timeout(server, path):
    started = time.monotonic()
    key, stream, error = download_image_within_deadline((0, f"{server}/{path}"), 2, None, None)
    elapsed = time.monotonic() - started
    assert stream is None and error == "download took longer than the 2 s timeout"
    assert 1.9 < elapsed < 3.5  # without the deadline: a minute


def test_decompression_bomb_is_refused_from_its_header(server):
    key, stream, error = download_image_within_deadline((3, f"{server}/bomb.png"), 5, None, None)
    assert (key, stream, error) == (3, None, OVERSIZED_IMAGE)
    key, stream, error = download_image_within_deadline((4, f"{server}/good.png"), 5, None, None)
    assert error is None and Image.open(stream).size == (32, 32)


@pytest.mark.slow
def test_img2dataset_counts_both_and_keeps_the_good_image(server, tmp_path):
    urls = [f"{server}/{name}.png" for name in ("good", "bomb", "trickle")]
    write_url_list(["a good one", "a bomb", "a trickle"], urls, [2, 3, 4], tmp_path / "urls.tsv")
    started = time.monotonic()
    run_img2dataset(tmp_path / "urls.tsv", tmp_path / "shards", DownloadOptions(timeout=2))
    elapsed = time.monotonic() - started
    stats = download_stats(tmp_path / "shards")
    assert (stats["count"], stats["successes"], stats["failed"]) == (3, 1, 2)
    reasons = {failure["source_row"]: failure["error"] for failure in stats["failures"]}
    assert reasons == {3: OVERSIZED_IMAGE, 4: "download took longer than the 2 s timeout"}
    assert elapsed < 50  # img2dataset's start-up included; without the deadline: over a minute
