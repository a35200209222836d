"""A TCP proxy in front of a Kafka broker that holds the broker's answers back: every response
`delay_s` late, and (once, on demand) none at all for a stretch. A slow broker, as the client sees
it, over real sockets.

Clients bootstrap from the proxy; the broker's own address in Metadata (and FindCoordinator)
answers is rewritten to the proxy's, so every later connection goes through it too. Only those
answers are parsed, in the non-flexible versions aiokafka 0.14 asks for (Metadata v0-v5,
FindCoordinator v0-v1), and Produce answers when told to report an error in them; everything
else passes byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass, field

PRODUCE = 0
METADATA = 3
FIND_COORDINATOR = 10


def _skip_string(frame: bytes, at: int) -> int:
    (length,) = struct.unpack_from(">h", frame, at)
    return at + 2 + max(0, length)


def patch_broker_ports(frame: bytes, api_key: int, version: int, port: int) -> bytes:
    """A response frame (without its size prefix) with every broker port replaced by `port`."""
    data = bytearray(frame)
    at = 4  # correlation id
    if api_key == METADATA:
        if version >= 3:
            at += 4  # throttle_time_ms
        (brokers,) = struct.unpack_from(">i", data, at)
        at += 4
        for _ in range(brokers):
            at += 4  # node_id
            at = _skip_string(frame, at)  # host
            struct.pack_into(">i", data, at, port)
            at += 4
            if version >= 1:
                at = _skip_string(frame, at)  # rack
    elif api_key == FIND_COORDINATOR:
        if version >= 1:
            at += 4  # throttle_time_ms
        at += 2  # error_code
        if version >= 1:
            at = _skip_string(frame, at)  # error_message
        at += 4  # node_id
        at = _skip_string(frame, at)  # host
        struct.pack_into(">i", data, at, port)
    return bytes(data)


def patch_produce_error(frame: bytes, error_code: int) -> bytes:
    """A Produce answer (v0-v8) whose first partition reports `error_code`: the broker wrote the
    batch, the client hears it did not."""
    data = bytearray(frame)
    at = 4 + 4  # correlation id, topic count
    at = _skip_string(frame, at)  # topic name
    at += 4 + 4  # partition count, partition
    struct.pack_into(">h", data, at, error_code)
    return bytes(data)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = await reader.readexactly(4)
    return await reader.readexactly(struct.unpack(">i", size)[0])


@dataclass
class BrokerProxy:
    """127.0.0.1:<port> in front of the broker at 127.0.0.1:`broker_port`."""

    broker_port: int
    delay_s: float = 0.0
    # Which answers are late (Kafka API keys; None: all of them). Produce (0) by default: a busy
    # broker acknowledges late, and still answers metadata.
    delayed: frozenset[int] | None = frozenset({PRODUCE})
    port: int = 0
    responses: int = 0
    # Error codes to put into the next Produce answers (the first partition of each), one each.
    produce_errors: list[int] = field(default_factory=list)
    _stall_until: float = 0.0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers through the proxy."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stall(self, seconds: float) -> None:
        """From now on, no answer reaches any client for `seconds` (then all of them do)."""
        self._stall_until = time.monotonic() + seconds

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        asked: dict[int, tuple[int, int]] = {}  # correlation id -> (api key, version)
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def requests() -> None:
            while True:
                frame = await _read_frame(client_r)
                api_key, version, correlation = struct.unpack_from(">hhi", frame, 0)
                asked[correlation] = (api_key, version)
                broker_w.write(struct.pack(">i", len(frame)) + frame)
                await broker_w.drain()

        async def answers() -> None:
            while True:
                frame = await _read_frame(broker_r)
                (correlation,) = struct.unpack_from(">i", frame, 0)
                api_key = asked.get(correlation, (-1, -1))[0]
                late = self.delayed is None or api_key in self.delayed
                await queue.put((time.monotonic() + (self.delay_s if late else 0.0), frame))

        async def deliver() -> None:
            while True:
                due, frame = await queue.get()
                while (wait := max(due, self._stall_until) - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                (correlation,) = struct.unpack_from(">i", frame, 0)
                api_key, version = asked.pop(correlation, (-1, -1))
                if api_key in (METADATA, FIND_COORDINATOR):
                    frame = patch_broker_ports(frame, api_key, version, self.port)
                elif api_key == PRODUCE and self.produce_errors:
                    frame = patch_produce_error(frame, self.produce_errors.pop(0))
                client_w.write(struct.pack(">i", len(frame)) + frame)
                await client_w.drain()
                self.responses += 1

        try:
            async with asyncio.TaskGroup() as group:
                for work in (requests(), answers(), deliver()):
                    group.create_task(work)
        except* (OSError, asyncio.IncompleteReadError):
            pass  # either side closed: close the other
        finally:
            for writer in (client_w, broker_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            self._tasks.discard(task)
