"""`infomax serve`: the search page and JSON API over an index, run by uvicorn."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import socket
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="serve search by image: a web page and a JSON API",
        description="Loads the index, the encoder and the gallery images once, then serves the search page at / "
                    "and the API at /api (schema at /docs). Binds to 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--index", required=True, help="index folder written by `infomax index`")
    p.add_argument("--checkpoint", help="run folder (its latest checkpoint), step folder or pretrained:NAME that embeds uploads "
                                        "(default: the one the index records)")
    p.add_argument("--data", help="data spec of the gallery images (default: the one the index records)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (for uploaded images)")
    p.add_argument("--threads", type=int, help="threads for the model and the index scan (default: all cores but one)")
    p.add_argument("--max-decodes", type=int, default=4, metavar="N",
                   help="uploads decoded at once (default 4); 8×N more may wait, beyond that uploads get 503")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=run)
    return p


def bind(host: str, port: int) -> socket.socket:
    """Listen on host:port now, so a busy port is reported before the model is loaded."""
    from infomax.errors import InfomaxError

    if not 0 <= port <= 65535:
        raise InfomaxError(f"--port must be 0 to 65535 (got {port})")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise InfomaxError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; pass another --port" if exc.errno in (98, 48) else ""
        raise InfomaxError(f"cannot listen on {host}:{port} ({exc.strerror}){hint}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def browser_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    from infomax.extras import SERVE, require_all

    require_all(SERVE, "serve", "infomax serve")
    import uvicorn

    from infomax.errors import InfomaxError
    from infomax.serve.app import create_app
    from infomax.serve.service import SearchService, default_threads

    if args.threads is not None and args.threads < 1:
        raise InfomaxError(f"--threads must be at least 1 (got {args.threads})")
    if args.max_decodes < 1:
        raise InfomaxError(f"--max-decodes must be at least 1 (got {args.max_decodes})")
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    try:
        print(f"loading the index {args.index} ...", flush=True)
        service = SearchService.open(args.index, args.checkpoint, args.data, device=args.device,
                                     threads=args.threads or default_threads())
    except BaseException:
        sock.close()
        raise
    gc.freeze()  # the loaded gallery and model are long-lived: keep them out of every collection
    try:
        app = create_app(service, max_decodes=args.max_decodes)
        config = uvicorn.Config(app, workers=1, log_level="warning", access_log=args.access_log,
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        url = browser_url(args.host, port)
        threads = args.threads or default_threads()
        print(f"searching {service.size} images with {service.embedder.z_dim}-d features "
              f"({service.index.kind} index, {threads} search thread{'s' if threads > 1 else ''})")
        print(f"open {url} in a browser (API schema: {url}docs); Ctrl+C stops", flush=True)
        if not is_loopback(args.host):
            print(f"note: listening on {args.host}: other machines that can reach this one can use the service",
                  file=sys.stderr)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn finishes the open requests, then passes Ctrl+C on
            pass
        print("stopped", flush=True)
    finally:
        service.close()
        sock.close()
    return 0
