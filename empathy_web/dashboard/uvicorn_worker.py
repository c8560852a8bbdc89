"""One uvicorn worker: ``manage.py serve`` starts one on each listening socket it opened
(``python -m empathy_web.dashboard.uvicorn_worker FD``); ``... HOST PORT`` opens its own.

uvicorn's own ``--fd`` takes any inherited socket for a Unix one, so its TCP connections
would lose ``TCP_NODELAY``, and a response written in two parts would wait for the
client's delayed ACK (about 40 ms a request, measured). Here the socket keeps its real
family, and the event loop sets ``TCP_NODELAY`` on every connection as usual.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn

APPLICATION = "empathy_web.asgi:application"
# On SIGTERM, open connections (dashboards' websockets among them) get this long to end.
GRACEFUL_SECONDS = 5


def config(application: Any = APPLICATION) -> uvicorn.Config:
    """How every uvicorn worker runs the site:
    - websockets by the ``websockets`` package's sans-I/O protocol (the cheapest frame
      per viewer of uvicorn's three: README, "Live updates"), without compression. A
      browser offers ``permessage-deflate``, and uvicorn accepts it unless told not to;
      a dashboard frame would then be compressed once per viewer, which costs more
      than sending it, and compressed in one context with the viewer's CSRF token and
      text that agents wrote, which is what compression side channels need (daphne
      does not compress either);
    - uvloop's event loop and httptools' HTTP parser, named rather than left to
      uvicorn's "auto" (which quietly falls back to slower ones when they are missing);
    - no lifespan events (the app has none), no access log (as daphne by default);
    - the client's address and scheme from the connection. uvicorn would otherwise
      take them from ``X-Forwarded-For`` and ``X-Forwarded-Proto`` on any connection
      from loopback; which proxy to trust is the site's own setting
      (``TRUSTED_PROXY_HEADER``, ``SECURE_PROXY_SSL``), off by default, as daphne's
      ``--proxy-headers`` is."""
    return uvicorn.Config(
        application,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )


def serve(sockets: list[socket.socket], application: Any = APPLICATION) -> None:
    """Serve ``application`` on ``sockets`` until SIGTERM or SIGINT."""
    uvicorn.Server(config(application)).run(sockets=sockets)


def main(argv: list[str]) -> None:
    if len(argv) == 1 and argv[0].isdigit():
        serve([socket.socket(fileno=int(argv[0]))])  # its family and type, as opened
    elif len(argv) == 2 and argv[1].isdigit():
        from empathy_web.dashboard.management.commands.serve import listening_sockets

        serve(listening_sockets(argv[0], int(argv[1]), 1))
    else:
        raise SystemExit("usage: python -m empathy_web.dashboard.uvicorn_worker FD | HOST PORT")


if __name__ == "__main__":
    main(sys.argv[1:])
