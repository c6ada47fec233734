"""A TCP forwarder in front of the mail sink that can stop answering: while it holds, new connections are
accepted and never answered, and what a sender says on a connection it already had is never passed on,
so that a sender is caught in the middle of its SMTP conversation either way (the notifier keeps its
connections open between mails)."""

from __future__ import annotations

import asyncio
import contextlib


class SmtpGate:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.holding = False
        # The client sides of the conversations caught, one per conversation.
        self.held: list[asyncio.StreamWriter] = []
        self._upstream_of_held: list[asyncio.StreamWriter] = []
        # Both sides of the conversations forwarded, for cut().
        self._forwarded: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def release(self) -> None:
        """Drop the held connections and forward new ones again."""
        self.holding = False
        for writer in self.held + self._upstream_of_held:
            writer.close()
        self.held.clear()
        self._upstream_of_held.clear()

    def cut(self) -> None:
        """Close every conversation forwarded so far (the server restarted): a sender's open connections
        are dead, so its next delivery opens a new one."""
        for writer in self._forwarded:
            writer.close()
        self._forwarded.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.holding:
            self.held.append(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._forwarded.update((writer, up_writer))
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, client=writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamWriter | None = None,
    ) -> None:
        """`client` is given for the direction from the sender to the sink: that one the gate can hold."""
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if client is not None and self.holding:
                    # Both sides stay open, unanswered, until release().
                    self.held.append(client)
                    self._upstream_of_held.append(writer)
                    return
                writer.write(data)
                await writer.drain()
        writer.close()
