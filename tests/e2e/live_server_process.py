"""The browser tests' live server: the project's default ASGI server (uvicorn, as
``manage.py serve`` runs it) in a child process, in place of channels' daphne one."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from typing import Any

from channels.testing import ChannelsLiveServerTestCase

from empathy_web.dashboard.management.commands.serve import listening_sockets
from empathy_web.dashboard.uvicorn_worker import serve


class UvicornProcess(multiprocessing.Process):
    """What ``ChannelsLiveServerTestCase`` expects of its server process (``port``,
    ``ready``, ``errors``), serving with ``uvicorn_worker.serve``."""

    def __init__(
        self,
        host: str,
        get_application: Callable[[], Any],
        kwargs: dict[str, Any] | None = None,
        setup: Callable[[], None] | None = None,
        teardown: Callable[[], None] | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.get_application = get_application
        self.setup = setup
        self.teardown = teardown
        self.port = multiprocessing.Value("i", port if port is not None else 0)
        self.ready = multiprocessing.Event()
        self.errors: multiprocessing.Queue[tuple[BaseException, str]] = multiprocessing.Queue()

    def run(self) -> None:
        try:
            application = self.get_application()
            sockets = listening_sockets(self.host, self.port.value, 1)
            self.port.value = sockets[0].getsockname()[1]
            if self.setup is not None:
                self.setup()
            self.ready.set()  # connections wait in the backlog until uvicorn accepts
            try:
                serve(sockets, application)
            finally:
                if self.teardown is not None:
                    self.teardown()
        except BaseException as exc:
            self.errors.put((exc, traceback.format_exc()))


class LiveServerTestCase(ChannelsLiveServerTestCase):
    """``ChannelsLiveServerTestCase`` on the project's default server."""

    ProtocolServerProcess = UvicornProcess
