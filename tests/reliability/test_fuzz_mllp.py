"""Fuzzing the MLLP framer: any chunking of any stream; only FrameTooLarge may escape, memory stays bounded.

A framer sits on an unauthenticated socket: whatever bytes arrive, in whatever pieces, it must
either return frames or raise FrameTooLarge (a MalformedMessage), hold at most the frame limit,
and never hand over a frame with a control byte inside or larger than the limit.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import strategies as st

from adapters.his.mllp import FrameTooLarge, MllpFramer, frame
from tests.reliability.fuzzing import BUDGETS, fuzz

BODY = st.binary(max_size=300).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))
# Noise between frames: anything but a start block (a VT opens a frame by definition).
NOISE = st.binary(max_size=12).map(lambda b: b.replace(b"\x0b", b""))
CONTROL = st.sampled_from([b"\x0b", b"\x1c", b"\x0d", b"\x1c\x0d", b"\x0b\x1c", b"\x0a"])
GARBAGE = st.lists(st.one_of(st.binary(max_size=40), CONTROL), max_size=30).map(b"".join)


def _pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


@st.composite
def framed_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """(bodies, reads): valid frames with noise between them, cut into arbitrary reads."""
    bodies = draw(st.lists(BODY, max_size=8))
    stream = b"".join(draw(NOISE) + frame(body) for body in bodies) + draw(NOISE)
    return bodies, _pieces(stream, draw(st.lists(st.integers(0, 10_000), max_size=20)))


def _valid_stream(case: tuple[list[bytes], list[bytes]]) -> None:
    bodies, reads = case
    framer = MllpFramer(max_frame_bytes=1024)
    got = [f for read in reads for f in framer.feed(read)]
    assert got == bodies
    assert framer.buffered == 0


def _garbage(case: tuple[bytes, list[int], int]) -> None:
    stream, cuts, limit = case
    framer = MllpFramer(max_frame_bytes=limit)
    for read in _pieces(stream, cuts):
        refused: FrameTooLarge | None = None
        try:
            frames = framer.feed(read)
        except FrameTooLarge as exc:
            refused, frames = exc, exc.frames
        if refused is not None:
            assert refused.size > limit
            assert len(refused.head) <= refused.size
        for body in frames:
            assert b"\x0b" not in body
            assert b"\x1c" not in body
            assert len(body) <= limit
        assert framer.buffered <= limit


def _unterminated(case: tuple[list[bytes], bytes, list[int]]) -> None:
    bodies, tail, cuts = case
    stream = b"".join(frame(b) for b in bodies) + b"\x0b" + tail
    framer = MllpFramer(max_frame_bytes=1024)
    got = [f for read in _pieces(stream, cuts) for f in framer.feed(read)]
    assert got == bodies
    assert framer.buffered == len(tail)  # held, waiting for its end block; never passed on


@pytest.mark.parametrize("budget", BUDGETS)
def test_valid_frames_survive_any_chunking(budget: int) -> None:
    """Frames with noise between them, cut anywhere, come out whole and in order."""
    fuzz(budget, framed_streams(), _valid_stream)


@pytest.mark.parametrize("budget", BUDGETS)
def test_garbage_streams_only_raise_frame_too_large(budget: int) -> None:
    """Any bytes in any pieces: frames without control bytes within the limit, or FrameTooLarge."""
    fuzz(
        budget,
        st.tuples(GARBAGE, st.lists(st.integers(0, 2000), max_size=10), st.integers(1, 64)),
        _garbage,
    )


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_frame_without_end_block_is_held_not_delivered(budget: int) -> None:
    """A missing end block: the frames before it are delivered, the open one only buffered."""
    fuzz(
        budget,
        st.tuples(st.lists(BODY, max_size=4), BODY, st.lists(st.integers(0, 5000), max_size=8)),
        _unterminated,
    )


def test_huge_frame_is_refused_once_past_the_limit_in_64k_reads() -> None:
    """A 64 MiB frame sent in 64 KiB reads: refused as soon as it passes 1 MiB, buffer bounded meanwhile."""
    limit = 1024 * 1024
    framer = MllpFramer(max_frame_bytes=limit)
    before = framer.feed(frame(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5"))
    assert len(before) == 1
    chunk = b"X" * 65536
    msh = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5\r"
    framer.feed(b"\x0b" + msh)
    refused: FrameTooLarge | None = None
    reads = 0
    while refused is None and reads < 1024:  # 64 MiB at most
        reads += 1
        try:
            framer.feed(chunk)
        except FrameTooLarge as exc:
            refused = exc
        assert framer.buffered <= limit
    assert refused is not None
    # Refused on the first read past the limit, not at the end of the frame.
    assert (reads - 1) * len(chunk) + len(msh) <= limit < reads * len(chunk) + len(msh)
    assert refused.head.startswith(b"MSH|")
    # The rest of the refused frame is skipped; the next frame is read normally.
    assert framer.feed(chunk + b"\x1c\r" + frame(b"MSH|next")) == [b"MSH|next"]
