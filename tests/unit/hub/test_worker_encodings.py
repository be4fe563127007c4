"""A file that decodes implausibly under every allowed encoding is dead-lettered by the worker
naming the encodings tried and the likeliest one (charset-normalizer), not "no header row"."""

from __future__ import annotations

from pathlib import Path

from hub.ports import InboundMessage
from tests.e2e.conftest import wired_hub


async def test_a_big5_file_is_dead_lettered_naming_the_encodings_tried_and_the_likeliest(
    tmp_path: Path,
) -> None:
    """Not "no header row": the dead letter says what was tried and what the bytes most likely are."""
    rows = "物資編碼,物資名稱,規格型號,數量,單價,庫房,入庫日期\r\n" + "".join(
        f"GZ0100{i},藥物洗脫冠脈支架,3.0x18mm,{i},705.00,中心庫房,2024-06-0{i}\r\n" for i in range(1, 8)
    )
    async with wired_hub(tmp_path / "hub") as wired:
        archive = wired.hub.archive
        stored = await archive.store(
            InboundMessage(
                system="spd",
                payload=rows.encode("big5"),
                transport="file",
                message_id="入庫單_繁體.csv",
                site="main",
                metadata={"filename": "入庫單_繁體.csv"},
            )
        )
        outcome = await wired.hub.workers["spd"].process(await archive.get(stored.record.raw_ref))
        assert outcome.status == "dead_lettered"
        (letter,) = await wired.hub.dead_letters.query(system="spd")
        assert "tried utf-8" in letter.reason
        assert "gb18030" in letter.reason
        assert "likeliest encoding: big5" in letter.reason
        assert "header" not in letter.reason
