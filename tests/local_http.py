"""A static file server on 127.0.0.1 in a thread, for download tests: `with serve_folder(dir) as url`."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):  # noqa: N802 - the http.server name
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # quiet
        pass


@contextlib.contextmanager
def serve_folder(folder: Path, requests: list[str] | None = None):
    """Serve `folder` at the yielded base URL (http://127.0.0.1:PORT); every GET path is appended to
    `requests`."""
    handler = type("Handler", (_Handler,), {"requests": requests if requests is not None else []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
