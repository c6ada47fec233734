"""A TCP forwarder in front of the mail sink that can stop answering: while it holds, new connections are
accepted and never answered, and what a sender says on a connection it already had is never passed on,
so that a sender is caught in the middle of its SMTP conversation either way (the notifier keeps its
connections open between mails).

It can also hold only the server's reply to the end of a mail's data (`data_reply_delay`): the server has
the whole mail then, as a relay that scans the content before it answers."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

END_OF_DATA = b"\r\n.\r\n"


@dataclass
class _Conversation:
    tail: bytes = b""  # the last bytes the sender said, for an end of data split over two reads
    after_data: bool = False  # the next reply of the server answers the end of a mail's data


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
        # Seconds the server's reply to the end of a mail's data is held back; math.inf: until release().
        self.data_reply_delay = 0.0
        # How many such replies were held back so far.
        self.data_replies_held = 0

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
        conversation = _Conversation()
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, client=writer, conversation=conversation)),
            asyncio.create_task(self._pipe(up_reader, writer, replies_of=conversation, upstream=up_writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: asyncio.StreamWriter | None = None,
        conversation: _Conversation | None = None,
        replies_of: _Conversation | None = None,
        upstream: asyncio.StreamWriter | None = None,
    ) -> None:
        """`client` and `conversation` are given for the direction from the sender to the sink (that one
        the gate can hold), `replies_of` and `upstream` for the server's replies."""
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if client is not None and self.holding:
                    # Both sides stay open, unanswered, until release().
                    self.held.append(client)
                    self._upstream_of_held.append(writer)
                    return
                if conversation is not None:
                    said = conversation.tail + data
                    conversation.after_data = said.endswith(END_OF_DATA) and self.data_reply_delay > 0
                    conversation.tail = said[-len(END_OF_DATA) :]
                if replies_of is not None and replies_of.after_data:
                    replies_of.after_data = False
                    self.data_replies_held += 1
                    if math.isinf(self.data_reply_delay):
                        # Never answered; both sides stay open until release().
                        assert upstream is not None
                        self.held.append(writer)
                        self._upstream_of_held.append(upstream)
                        return
                    await asyncio.sleep(self.data_reply_delay)
                writer.write(data)
                await writer.drain()
        writer.close()
