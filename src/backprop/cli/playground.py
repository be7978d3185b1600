"""``backprop playground``: the learners' web app, served on this machine.

Starts the app of :mod:`backprop.playground.app` with uvicorn on ``--host`` (127.0.0.1 unless
asked otherwise; any other address is warned about) and ``--port`` (0: any free port), prints
the URL with its token and opens it in the default browser (``--no-browser``: not). Ctrl-C
stops it. NumPy's BLAS runs on one thread here (the pages' matrices are small; several pages
train side by side). Needs the ``playground`` extra: ``pip install "backprop[playground]"``.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
import webbrowser

from ..errors import BackpropError, ConfigError
from .argtypes import Subparsers, require

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: Subparsers) -> None:
    """Add ``playground`` to ``backprop``'s sub-commands."""
    p = subparsers.add_parser("playground", help="watch backpropagation train a network on 2-D data, in the browser")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                        "network, with a warning)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="seed of every new page's network and data (default 0)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    p.set_defaults(func=cmd_playground)


def cmd_playground(args: argparse.Namespace) -> int:
    require(0 <= args.port <= 65535, "--port", "an integer from 0 to 65535", args.port)
    require(0 <= args.seed < 2**31, "--seed", "an integer from 0 to 2147483647", args.seed)
    try:
        import uvicorn

        from ..playground.app import create_app, new_token
    except ImportError as err:
        raise BackpropError(f"backprop playground needs the playground extra ({err.name} is missing): "
                            'pip install "backprop[playground]"') from None
    if args.host not in LOOPBACK:
        print(f"backprop playground: warning: listening on {args.host}: anyone who can reach this machine "
              "and learns the URL's token can use the playground", file=sys.stderr)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    token = new_token()
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/?token={token}"
    from ..threads import set_threads

    # one BLAS thread: a page's matrices are tiny (10,000 x 8 at most), where OpenBLAS's threads
    # cost more than they give (one 100 x 100 grid through Dense(8, 8): 0.35 ms on one thread,
    # 13.7 ms on two, measured on a loaded 2-core machine); pages run side by side instead
    set_threads(1)
    app = create_app(token, config={"seed": args.seed, "data_seed": args.seed})
    from ..playground.protocol import LIMITS

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="auto", lifespan="off",
                                           ws_max_size=2 * LIMITS["max_message_bytes"]))
    print(f"backprop playground: {url}\n(Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a one-line error naming the flag."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    return sock


def _open_when_started(server: object, url: str) -> None:
    for _ in range(200):
        if getattr(server, "started", False):
            webbrowser.open(url)
            return
        time.sleep(0.05)
