"""A fault-injecting TCP proxy on loopback, for tests of what the library does when the
network between it and Redis misbehaves.

The proxy runs an asyncio loop in a thread of its own. Each client connection gets its
own connection to the target; bytes are pumped both ways in chunks, and a fault applies
to whatever chunk comes next:

``blackhole()``      nothing moves either way and nothing is reset, as when packets are
                     dropped; ``heal()`` then delivers what was held back (or drops it).
``drop_replies(n)``  the target's next ``n`` replies are discarded: the command ran, its
                     answer never arrives.
``reset_replies(n)`` the target's next ``n`` replies are discarded and their connection
                     reset: the command ran, the client sees the connection fail.
``cut()``            every open connection is closed at once, as by a reset.

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

HOST = "127.0.0.1"
CHUNK = 65536
T = TypeVar("T")


class FaultProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target_port>, with faults on demand."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.replies_dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._deliver = True
        self._drop_replies = 0
        self._reset_replies = 0
        self._writers: set[asyncio.StreamWriter] = set()

    # control, from the test's thread ---------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def blackhole(self) -> None:
        """Hold every byte, both ways, without closing anything."""
        self._call(self._set_flowing, False, True)

    def heal(self, *, deliver: bool = True) -> None:
        """Let bytes move again; what was held is delivered, or dropped if not
        ``deliver``."""
        self._call(self._set_flowing, True, deliver)

    def drop_replies(self, count: int = 1) -> None:
        """Discard the next ``count`` chunks the target sends."""
        self._call(self._set_drop, count)

    def reset_replies(self, count: int = 1) -> None:
        """Discard the next ``count`` chunks the target sends, resetting each one's
        connection."""
        self._call(self._set_reset, count)

    def cut(self) -> None:
        """Close every open connection, both sides."""
        self._call(self._cut)

    @property
    def connections(self) -> int:
        return self._call(self._count)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        future = asyncio.run_coroutine_threadsafe(function(*args), self._loop)
        return future.result(timeout=10)

    # inside the loop ---------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
        # Finish the connections' tasks here, so none is left pending when the loop stops.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _set_flowing(self, flowing: bool, deliver: bool) -> None:
        assert self._flowing is not None
        self._deliver = deliver
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _set_drop(self, count: int) -> None:
        self._drop_replies = count

    async def _set_reset(self, count: int) -> None:
        self._reset_replies = count

    async def _count(self) -> int:
        return len(self._writers) // 2

    async def _cut(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, target_w))
        await asyncio.gather(
            self._pump(client_r, target_w, replies=False),
            self._pump(target_r, client_w, replies=True),
            return_exceptions=True,
        )
        for writer in (client_w, target_w):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, replies: bool
    ) -> None:
        assert self._flowing is not None
        while data := await reader.read(CHUNK):
            if not self._flowing.is_set():
                await self._flowing.wait()
                if not self._deliver:
                    continue
            if replies and self._drop_replies > 0:
                self._drop_replies -= 1
                self.replies_dropped += 1
                continue
            if replies and self._reset_replies > 0:
                self._reset_replies -= 1
                self.replies_dropped += 1
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
