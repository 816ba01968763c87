"""`promptclimb dashboard PATH`: a local web app that watches a run directory or a bench grid
directory while it is written (best-so-far curve, every trial, the conversations; a grid's cells,
their states and tables), bound to 127.0.0.1 unless told otherwise. Starlette and uvicorn are
imported only when the command runs."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

DEFAULT_PORT = 8765


def add_command(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="watch a run or a bench grid live in the browser")
    p.add_argument("path", help="a run directory (optimize --out) or a grid directory (bench --out)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.set_defaults(func=cmd_dashboard)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error saying how to pick another port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port} ({err.strerror}): pass another --port, "
                         "or --port 0 for any free one") from None
    sock.listen(64)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def cmd_dashboard(args: argparse.Namespace, console: Console) -> int:
    try:
        import uvicorn

        from promptclimb.dashboard.app import create_app
    except ImportError as err:
        raise ValueError(f"the dashboard needs starlette and uvicorn ({err}): "
                         "pip install uvicorn==0.54.0 fastapi==0.163.2") from None
    loopback = ipaddress.ip_address(args.host).is_loopback if _is_ip(args.host) else args.host == "localhost"
    app = create_app(Path(args.path).expanduser(), None if loopback else ["*"])
    sock = bind(args.host, args.port)
    console.print(f"dashboard of {args.path} at {url_of(sock)}  (Ctrl-C to stop)", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
    return 0
