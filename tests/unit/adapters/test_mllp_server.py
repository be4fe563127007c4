"""`serve_mllp` with real asyncio TCP clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
import subprocess
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from adapters.his.ack import build_ack
from adapters.his.header import header
from adapters.his.mllp import MllpFramer, frame, serve_mllp

NOW = datetime(2024, 6, 12, tzinfo=UTC)


def message(control_id: str, body: str = "EVN|P03") -> bytes:
    return f"MSH|^~\\&|HIS|H|HUB|H|20240612||DFT^P03|{control_id}|P|2.5\r{body}\r".encode()


class Recorder:
    """A handler that records what it got and answers AA, optionally after a random pause."""

    def __init__(self, *, jitter: float = 0.0) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.jitter = jitter

    async def __call__(self, payload: bytes, metadata: dict[str, str]) -> bytes:
        if self.jitter:
            await asyncio.sleep(random.random() * self.jitter)
        self.received.append((payload, metadata))
        return build_ack(header(payload), "AA", now=NOW)


async def start(handler, **kwargs):
    server = await serve_mllp(handler, "127.0.0.1", 0, **kwargs)
    return server, server.sockets[0].getsockname()[1]


async def read_frames(reader: asyncio.StreamReader, count: int, timeout: float = 5.0) -> list[bytes]:
    framer = MllpFramer()
    frames: list[bytes] = []
    while len(frames) < count:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            break
        frames += framer.feed(data)
    return frames


def msa(ack: bytes) -> list[str]:
    line = next(s for s in ack.decode().split("\r") if s.startswith("MSA"))
    return line.split("|")


async def stop(server: asyncio.Server, *writers: asyncio.StreamWriter) -> None:
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


class TestServeMllp:
    async def test_one_message_gets_its_ack(self):
        """A framed message is handed to the handler and its ACK comes back framed."""
        handler = Recorder()
        server, port = await start(handler)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(message("M1")))
        (ack,) = await read_frames(reader, 1)
        assert msa(ack) == ["MSA", "AA", "M1"]
        assert handler.received[0][0] == message("M1")
        metadata = handler.received[0][1]
        assert metadata["tls"] == "no"
        assert metadata["peer"].startswith("127.0.0.1:")
        await stop(server, writer)

    async def test_many_connections_each_get_acks_in_their_order(self):
        """Eight connections send 25 pipelined frames each; each gets its ACKs in its own order."""
        handler = Recorder(jitter=0.002)
        server, port = await start(handler)

        async def client(n: int) -> list[str]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"".join(frame(message(f"C{n}-{i}")) for i in range(25)))
            await writer.drain()
            acks = await read_frames(reader, 25)
            writer.close()
            return [msa(a)[2] for a in acks]

        results = await asyncio.gather(*(client(n) for n in range(8)))
        for n, ids in enumerate(results):
            assert ids == [f"C{n}-{i}" for i in range(25)]
        assert len(handler.received) == 200
        await stop(server)

    async def test_frames_split_into_tiny_writes(self):
        """A sender writing a few bytes at a time (frames cut anywhere) still gets every ACK in order."""
        handler = Recorder()
        server, port = await start(handler)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = b"\r\n" + b"".join(frame(message(f"S{i}")) for i in range(5))
        for start_at in range(0, len(stream), 7):
            writer.write(stream[start_at : start_at + 7])
            await writer.drain()
            await asyncio.sleep(0)
        acks = await read_frames(reader, 5)
        assert [msa(a)[2] for a in acks] == [f"S{i}" for i in range(5)]
        await stop(server, writer)

    async def test_oversize_frame_gets_ar_and_the_connection_closes(self):
        """Earlier frames are answered; the oversize one gets an AR (not the handler) and the socket closes."""
        handler = Recorder()
        server, port = await start(handler, max_frame_bytes=300)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        big = message("BIG", "NTE|1||" + "x" * 1000)
        with capture_logs() as logs:
            writer.write(frame(message("OK1")) + frame(big))
            acks = await read_frames(reader, 3)
        assert [msa(a)[:3] for a in acks] == [["MSA", "AA", "OK1"], ["MSA", "AR", "BIG"]]
        assert "larger than the 300-byte limit" in acks[1].decode()
        assert [p for p, _ in handler.received] == [message("OK1")]
        assert await reader.read() == b""  # closed by the server
        assert any(e["event"] == "mllp_frame_too_large" and e["limit"] == 300 for e in logs)
        await stop(server, writer)

    async def test_unfinished_frames_share_one_buffer_budget(self):
        """A frame that would take the listener past its shared budget gets AR "send again"; the
        connection holding the budget finishes, and once it has, the next sender is answered."""
        handler = Recorder()
        server, port = await start(handler, max_frame_bytes=10_000, max_buffered_bytes=1_000)
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
        held = frame(message("HELD", "NTE|1||" + "x" * 700))
        slow.write(held[:-50])  # 700+ bytes of an unfinished frame: most of the budget
        await slow.drain()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with capture_logs() as logs:
            writer.write(frame(message("CROWD", "NTE|1||" + "y" * 400)))
            acks = await read_frames(reader, 1)
        assert [msa(a)[:3] for a in acks] == [["MSA", "AR", "CROWD"]]
        assert "send again" in acks[0].decode()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert any(e["event"] == "mllp_buffer_budget_full" and e["budget"] == 1_000 for e in logs)
        slow.write(held[-50:])
        assert [msa(a)[:3] for a in await read_frames(slow_reader, 1)] == [["MSA", "AA", "HELD"]]
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
        writer2.write(frame(message("LATER", "NTE|1||" + "y" * 400)))
        assert [msa(a)[:3] for a in await read_frames(reader2, 1)] == [["MSA", "AA", "LATER"]]
        assert [header(p).control_id for p, _ in handler.received] == ["HELD", "LATER"]
        await stop(server, slow, writer, writer2)

    async def test_oversize_frame_without_readable_msh_just_closes(self):
        """No MSH line in the kept head: no AR can be addressed; the connection is closed."""
        handler = Recorder()
        server, port = await start(handler, max_frame_bytes=100)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(b"x" * 500))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert handler.received == []
        await stop(server, writer)

    async def test_handler_failure_closes_without_an_answer_and_logs_no_payload(self):
        """A handler exception: no ACK at all (never an AA), the connection closes, the log has no payload."""

        async def failing(payload: bytes, metadata: dict[str, str]) -> bytes:
            raise RuntimeError(payload.decode())  # an error text that quotes the payload

        server, port = await start(failing)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with capture_logs() as logs:
            writer.write(frame(message("F1", "PID|1||SECRET-MRN-77")))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            await asyncio.sleep(0.05)
        failed = [e for e in logs if e["event"] == "mllp_handler_failed"]
        assert failed
        assert failed[0]["error_type"] == "RuntimeError"
        assert "SECRET-MRN-77" not in repr(logs)
        await stop(server, writer)

    async def test_logs_never_hold_payload_bytes(self):
        """A normal exchange logs peer and counts, not the message."""
        server, port = await start(Recorder())
        with capture_logs() as logs:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"junk" + frame(message("L1", "PID|1||SECRET-NAME-88")))
            await read_frames(reader, 1)
            writer.close()
            await asyncio.sleep(0.05)
        closed = [e for e in logs if e["event"] == "mllp_connection_closed"]
        assert closed
        assert (closed[0]["answered"], closed[0]["discarded_bytes"]) == (1, 4)
        assert "SECRET-NAME-88" not in repr(logs)
        await stop(server)


@pytest.fixture
def tls_files(tmp_path):
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS test makes a throwaway certificate with the openssl command"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TestTls:
    async def test_tls_connection_is_served_and_marked(self, tls_files):
        """With an SSL context the listener speaks TLS and tells the handler `tls: yes`."""
        cert, key = tls_files
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=str(cert))
        handler = Recorder()
        server, port = await start(handler, ssl=server_ctx)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        writer.write(frame(message("T1")))
        (ack,) = await read_frames(reader, 1)
        assert msa(ack) == ["MSA", "AA", "T1"]
        assert handler.received[0][1]["tls"] == "yes"
        await stop(server, writer)
