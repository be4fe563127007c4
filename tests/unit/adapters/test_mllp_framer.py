"""MLLP deframing: splits, several frames per read, garbage, restarts and the size limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.his.mllp import FrameTooLarge, MllpFramer, frame

# Message bodies never contain the MLLP control bytes VT (0x0B) or FS (0x1C).
BODY = st.binary(max_size=200).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


def feed_in_pieces(framer: MllpFramer, stream: bytes, cuts: list[int]) -> list[bytes]:
    frames: list[bytes] = []
    last = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        frames += framer.feed(stream[last:cut])
        last = cut
    return frames


class TestFraming:
    def test_frame_wraps_in_vt_and_fs_cr(self):
        """`frame` adds the start block and the end block."""
        assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"

    def test_one_frame_in_one_read(self):
        """A whole frame in one read comes back as its payload."""
        assert MllpFramer().feed(frame(b"MSH|1")) == [b"MSH|1"]

    def test_several_frames_in_one_read(self):
        """Two frames in one read come back in order."""
        assert MllpFramer().feed(frame(b"A") + frame(b"B")) == [b"A", b"B"]

    def test_frame_split_across_reads(self):
        """A frame cut anywhere, even between FS and CR, is returned once complete."""
        framer = MllpFramer()
        assert framer.feed(b"\x0bMSH|") == []
        assert framer.buffered == 4
        assert framer.feed(b"1\x1c") == [b"MSH|1"]
        assert framer.feed(b"\x0d") == []
        assert framer.discarded == 0

    @given(
        st.lists(BODY, min_size=1, max_size=6),
        st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    )
    @settings(max_examples=300)
    def test_any_split_of_a_stream_yields_the_same_frames(self, bodies, cuts):
        """However the stream of frames is cut into reads, the same frames come out, in order."""
        stream = b"".join(frame(b) for b in bodies)
        framer = MllpFramer()
        assert feed_in_pieces(framer, stream, [c % (len(stream) + 1) for c in cuts]) == bodies
        assert framer.discarded == 0

    @given(
        st.lists(BODY, min_size=1, max_size=5),
        st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\x0b", b"")), min_size=6, max_size=6),
        st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
    )
    @settings(max_examples=300)
    def test_garbage_between_frames_is_skipped_and_counted(self, bodies, garbage, cuts):
        """Bytes outside frames (anything but VT) are skipped and counted; the frames still come out."""
        stream = b"".join(g + frame(b) for g, b in zip(garbage, bodies, strict=False)) + garbage[-1]
        framer = MllpFramer()
        assert feed_in_pieces(framer, stream, [c % (len(stream) + 1) for c in cuts]) == bodies
        assert framer.discarded == sum(len(g) for g in garbage[: len(bodies)]) + len(garbage[-1])

    def test_vt_inside_an_open_frame_restarts(self):
        """A sender that gives up mid-frame and starts again: the partial frame is dropped and counted."""
        framer = MllpFramer()
        assert framer.feed(b"\x0bMSH|half" + frame(b"MSH|whole")) == [b"MSH|whole"]
        assert framer.discarded == len(b"\x0bMSH|half")

    def test_fs_without_cr_still_ends_the_frame(self):
        """A sender that omits the CR after FS still gets its frames read."""
        assert MllpFramer().feed(b"\x0bA\x1c\x0bB\x1c") == [b"A", b"B"]


class TestSizeLimit:
    def test_frame_at_the_limit_is_accepted(self):
        """A payload of exactly max_frame_bytes is fine."""
        assert MllpFramer(max_frame_bytes=5).feed(frame(b"12345")) == [b"12345"]

    def test_oversize_frame_is_refused_with_size_and_limit(self):
        """One byte over: FrameTooLarge names the size seen and the limit; it is a MalformedMessage."""
        with pytest.raises(FrameTooLarge, match="at least 6 bytes exceeds the limit of 5 bytes") as info:
            MllpFramer(max_frame_bytes=5).feed(frame(b"123456"))
        assert isinstance(info.value, MalformedMessage)
        assert (info.value.size, info.value.limit, info.value.head) == (6, 5, b"123456")

    def test_oversize_is_detected_before_the_frame_ends(self):
        """The limit trips while the frame is still arriving, not after buffering it all."""
        framer = MllpFramer(max_frame_bytes=10)
        framer.feed(b"\x0b" + b"x" * 8)
        with pytest.raises(FrameTooLarge):
            framer.feed(b"y" * 8)

    def test_frames_before_the_oversize_one_are_handed_over(self):
        """Complete frames earlier in the same read travel in the exception, in order."""
        with pytest.raises(FrameTooLarge) as info:
            MllpFramer(max_frame_bytes=5).feed(frame(b"ok1") + frame(b"ok2") + frame(b"too-large"))
        assert info.value.frames == [b"ok1", b"ok2"]

    def test_framer_recovers_after_an_oversize_frame(self):
        """After refusing a frame, the rest of it is skipped and the next frame is read."""
        framer = MllpFramer(max_frame_bytes=5)
        with pytest.raises(FrameTooLarge):
            framer.feed(b"\x0b123456")
        assert framer.feed(b"789\x1c\x0d" + frame(b"next")) == [b"next"]

    def test_limit_must_be_positive(self):
        """A zero limit is a configuration error."""
        with pytest.raises(ValueError, match="positive"):
            MllpFramer(max_frame_bytes=0)
