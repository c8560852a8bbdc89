"""One uvicorn worker of ``manage.py serve --server uvicorn``, on the listening socket the
command opened for it (``python -m empathy_web.dashboard.uvicorn_worker FD``).

uvicorn's own ``--fd`` takes any inherited socket for a Unix one, so its TCP connections
would lose ``TCP_NODELAY``, and a response written in two parts would wait for the
client's delayed ACK (about 40 ms a request, measured). Here the socket keeps its real
family, and the event loop sets ``TCP_NODELAY`` on every connection as usual.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

APPLICATION = "empathy_web.asgi:application"


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not argv[0].isdigit():
        raise SystemExit("usage: python -m empathy_web.dashboard.uvicorn_worker FD")
    listening = socket.socket(fileno=int(argv[0]))  # its family and type, as opened
    # The app has no lifespan events; the access log is off, as daphne's is by default.
    config = uvicorn.Config(APPLICATION, ws="websockets", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[listening])


if __name__ == "__main__":
    main(sys.argv[1:])
