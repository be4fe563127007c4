"""The MLLP peers the hub is measured against, each its own process: `python -m bench.mllp_peers KIND PORT`.

- `hl7`: python-hl7's asyncio MLLP server: parses each message (hl7.parse) and answers its
  `create_ack()`; no storage. What a small Python integration service does.
- `bare`: an asyncio server that answers every frame with a constant ACK (no parsing): the
  ceiling of Python + asyncio + loopback on this machine.
Prints "ready" once listening; runs until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from bench.bench_his import _bare_connection

# The same bare ACK server as bench_his measures alone: one source, so the two rows compare alike.
_bare = _bare_connection


async def _hl7(reader, writer) -> None:  # type: ignore[no-untyped-def]  # hl7.mllp's streams
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    writer.close()


async def main(kind: str, port: int) -> None:
    if kind == "bare":
        server = await asyncio.start_server(_bare, "127.0.0.1", port)
    elif kind == "hl7":
        import hl7.mllp

        # GB18030 reads the GBK/GB18030 samples; "replace" keeps the UTF-8 one parseable too.
        server = await hl7.mllp.start_hl7_server(
            _hl7, "127.0.0.1", port, encoding="gb18030", encoding_errors="replace"
        )
    else:
        raise SystemExit(f"unknown peer {kind!r}: bare or hl7")
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
