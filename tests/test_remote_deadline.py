"""A server that keeps a connection alive with a byte now and then: the silence limit (--timeout)
never fires, so the whole answer has a deadline of its own, and the run ends in one line.

The server listens on 127.0.0.1 only, sends at most :data:`MOST_BYTES` bytes (one every
:data:`EVERY_S` seconds) and stops itself when the test leaves it.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import napari_autoconfig
from datafiles import needs_zarr
from napari_autoconfig import cli
from napari_autoconfig.readers import _remote

PACKAGE_ROOT = str(Path(napari_autoconfig.__file__).resolve().parents[1])
#: The dribble: a byte this often, a tenth of the silence limit the test gives (--timeout 0.5),
#: so that a busy machine delaying the server's thread does not make it a silence...
EVERY_S = 0.05
#: ... for at most this many bytes (60 s: well past the deadline, bounded all the same).
MOST_BYTES = 1200
#: Seconds the run may take before the test calls it hung (the deadline is 5 s).
HANG = 40


class dribbling_server:
    """An HTTP server on 127.0.0.1 (a free port) answering every GET with 200 and then one byte
    every :data:`EVERY_S` seconds; ``with`` gives its URL and stops it on leaving."""

    def __enter__(self) -> str:
        stop = self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                try:
                    for _ in range(MOST_BYTES):
                        if stop.wait(EVERY_S):
                            return
                        self.wfile.write(b"<")
                        self.wfile.flush()
                except OSError:  # the client hung up: what the test wants
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def test_a_server_sending_a_byte_now_and_then_meets_the_deadline_in_one_line():
    needs_zarr()  # a URL is read through fsspec and aiohttp, the zarr extra
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])),
    }
    with dribbling_server() as url:
        done = subprocess.run(
            [sys.executable, "-m", "napari_autoconfig", f"{url}/images/", "--timeout", "0.5"],
            capture_output=True,
            text=True,
            timeout=HANG,
            env=env,
        )
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert f"{url}/images/" in line
    assert "not complete within 5 s, though bytes kept coming" in line
    assert "--timeout" in line


def test_the_help_says_the_deadline(capsys):
    assert cli.REMOTE_DEADLINE_FACTOR == _remote.DEADLINE_FACTOR  # said without the readers
    try:
        cli.main(["--help"])
    except SystemExit:
        pass
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        f"or whose answer (a file, a chunk, a listing) is not complete within "
        f"{_remote.DEADLINE_FACTOR} times this long" in help_text
    )
