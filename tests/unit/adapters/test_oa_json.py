"""Reading OA JSON exports: shapes, line numbers, exact numbers, JSON Lines, limits and errors."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.oa.export import detect_format, read_export
from adapters.oa.json_reader import read_json
from adapters.oa.mapping import OaMapping
from tests.unit.adapters._oa import REQUEST, mapping


def limited(**limits: int) -> OaMapping:
    base = mapping()
    return base.model_copy(update={"limits": base.limits.model_copy(update=limits)})


class TestShapes:
    def test_bare_list(self) -> None:
        """A top-level list holds the records, numbered from 1."""
        result = read_json(b'[{"a": "1"}, {"a": "2"}]', filename="x.json", mapping=mapping())
        assert [(r.index, r.position, dict(r.fields)) for r in result.records] == [
            (1, "record:1", {"a": "1"}), (2, "record:2", {"a": "2"}),
        ]  # fmt: skip

    def test_object_with_record_key(self) -> None:
        """An export object holds its records under one of records.json_keys; the rest is header."""
        data = json.dumps({"导出时间": "2024-07-01", "记录": [{"a": "1"}]}, ensure_ascii=False).encode()
        result = read_json(data, filename="x.json", mapping=mapping())
        assert [dict(r.fields) for r in result.records] == [{"a": "1"}]

    def test_single_record_object(self) -> None:
        """An object that is itself a record (it has the kind field), as a webhook posts, is one record."""
        data = json.dumps(REQUEST, ensure_ascii=False).encode()
        result = read_json(data, filename="hook", mapping=mapping())
        assert len(result.records) == 1
        assert result.records[0].fields["工单号"] == "WX-0001"

    def test_object_without_records_is_refused(self) -> None:
        """An object with neither a records list nor a kind field is malformed, naming the keys looked for."""
        with pytest.raises(MalformedMessage, match=r"x\.json: no records: .*记录.*records\.json_keys"):
            read_json(b'{"foo": 1}', filename="x.json", mapping=mapping())

    def test_records_key_holding_an_object_is_refused(self) -> None:
        """A records key that holds something other than a list is malformed, saying what it holds."""
        with pytest.raises(
            MalformedMessage, match="'记录' should hold the list of records, but holds an object"
        ):
            read_json('{"记录": {"a": 1}}'.encode(), filename="x.json", mapping=mapping())

    def test_empty_list_is_no_records(self) -> None:
        """An export with no records is read as empty, not refused."""
        assert read_json(b'{"records": []}', filename="x.json", mapping=mapping()).records == ()

    def test_nested_groups_are_flattened_and_lists_kept(self) -> None:
        """Fields inside a nested group join the record; lists of objects stay lists."""
        data = '[{"处理信息": {"维修工时": 3.5}, "配件": [{"名称": "A", "数量": 2}]}]'.encode()
        fields = read_json(data, filename="x.json", mapping=mapping()).records[0].fields
        assert fields == {"维修工时": "3.5", "配件": ({"名称": "A", "数量": "2"},)}

    def test_numbers_are_exact(self) -> None:
        """JSON numbers keep every digit as written: no float rounding, no exponent blow-up."""
        data = b'[{"a": 12800.10, "b": 0.1, "c": 1e2, "d": 1e999999999, "e": true, "f": null}]'
        fields = read_json(data, filename="x.json", mapping=mapping()).records[0].fields
        assert fields == {"a": "12800.10", "b": "0.1", "c": "100", "d": "1E+999999999", "e": "true"}

    def test_record_lines(self) -> None:
        """Each record knows the line it starts on."""
        data = b'{\n  "records": [\n    {"a": 1},\n\n    {"a": 2}\n  ]\n}'
        assert [r.line for r in read_json(data, filename="x.json", mapping=mapping()).records] == [3, 5]

    def test_non_object_records_are_broken_not_fatal(self) -> None:
        """A list item that is not an object is a broken record; the others are read."""
        result = read_json(b'[{"a": 1}, [1], "x"]', filename="x.json", mapping=mapping())
        assert len(result.records) == 1
        assert [(b.failure.position, b.failure.code) for b in result.broken] == [
            ("record:2", "not_an_object"), ("record:3", "not_an_object"),
        ]  # fmt: skip


class TestJsonLines:
    def test_detected_without_a_suffix(self) -> None:
        """Several objects one per line are read as JSON Lines even without a .jsonl name."""
        result = read_json(b'{"a": 1}\n{"a": 2}\n', filename="push", mapping=mapping())
        assert result.format == "jsonl"
        assert [r.position for r in result.records] == ["line:1", "line:2"]

    def test_broken_line_is_one_broken_record(self) -> None:
        """A line that is not JSON is a broken record naming its line; the others are read."""
        result = read_json(b'{"a": 1}\n{"a": \n{"a": 3}\n', filename="push", mapping=mapping())
        assert [r.line for r in result.records] == [1, 3]
        assert [(b.failure.location.line, b.failure.code) for b in result.broken] == [
            (2, "unreadable_record")
        ]

    def test_garbage_after_a_document_is_refused(self) -> None:
        """Trailing text after a pretty-printed document is malformed, with its line and column."""
        with pytest.raises(MalformedMessage, match=r"extra data after the JSON value at line 3, column 1"):
            read_json(b'[\n{"a": 1}]\nxyz', filename="x.json", mapping=mapping())


class TestErrorsAndLimits:
    def test_invalid_json_names_line_and_column(self) -> None:
        """Invalid JSON is malformed, naming the file, line and column."""
        with pytest.raises(MalformedMessage, match=r"x\.json: not valid JSON at line 2, column 9"):
            read_json(b'[\n{"a": 1,}]', filename="x.json", mapping=mapping())

    def test_scalar_document_is_refused(self) -> None:
        """A document that is a bare number is malformed."""
        with pytest.raises(MalformedMessage, match="must be a list or an object, not a number"):
            read_json(b"42", filename="x.json", mapping=mapping())

    def test_too_many_records(self) -> None:
        """More records than limits.max_records is refused whole, naming the limit."""
        with pytest.raises(MalformedMessage, match=r"more than 2 records \(limits\.max_records\)"):
            read_json(b"[{}, {}, {}]", filename="x.json", mapping=limited(max_records=2))

    def test_too_many_bytes(self) -> None:
        """A payload over limits.max_bytes is refused before it is parsed."""
        with pytest.raises(MalformedMessage, match=r"x\.json: 11 bytes is over the OA limit of 10 bytes"):
            read_export(
                b"[{}, {}, {}]"[:11], filename="x.json", content_type=None, mapping=limited(max_bytes=10)
            )

    def test_too_deep_record_is_broken(self) -> None:
        """A record nested deeper than limits.max_depth is a broken record."""
        data = b'[{"a": {"b": {"c": {"d": 1}}}}, {"a": 1}]'
        result = read_json(data, filename="x.json", mapping=limited(max_depth=3))
        assert [b.failure.code for b in result.broken] == ["too_deep"]
        assert len(result.records) == 1

    def test_deep_nesting_is_refused_not_crashed(self) -> None:
        """A document nested beyond what the decoder can recurse is malformed, not a RecursionError."""
        with pytest.raises(MalformedMessage):
            read_json(b"[" * 100_000 + b"]" * 100_000, filename="x.json", mapping=mapping())

    def test_undecodable_bytes(self) -> None:
        """Bytes that are neither UTF-8 nor GB18030 are malformed, naming the offset."""
        with pytest.raises(MalformedMessage, match="byte offset"):
            read_json(b'[{"a": "\x80\xff"}]', filename="x.json", mapping=mapping())

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_raise_only_malformed(self, data: bytes) -> None:
        """Whatever the bytes, the JSON reader returns records or raises MalformedMessage."""
        with contextlib.suppress(MalformedMessage):
            read_json(data, filename="x.json", mapping=mapping())

    @settings(max_examples=300, deadline=None)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
            ),
            max_leaves=30,
        )
    )
    def test_arbitrary_json_raises_only_malformed(self, value: object) -> None:
        """Whatever JSON value the document holds, the reader returns records or raises MalformedMessage."""
        with contextlib.suppress(MalformedMessage):
            read_json(json.dumps(value, ensure_ascii=False).encode(), filename="x.json", mapping=mapping())


class TestFormatDetection:
    @pytest.mark.parametrize(
        ("payload", "filename", "content_type", "expected"),
        [
            (b"<a/>", "x.json", "application/json", "xml"),
            (b"\xef\xbb\xbf  [", "x", None, "json"),
            (b"{}", "x.jsonl", None, "jsonl"),
            (b"{}", "hook", "application/x-ndjson", "jsonl"),
            (b"\xff\xfe<\x00", "x", None, "xml"),
            (b"garbage", "x.xml", None, "xml"),
        ],
    )
    def test_detect(self, payload: bytes, filename: str, content_type: str | None, expected: str) -> None:
        """The first significant byte decides XML vs JSON; the name or content type decides JSON Lines."""
        assert detect_format(payload, filename=filename, content_type=content_type) == expected

    def test_neither_json_nor_xml(self) -> None:
        """A payload that is neither, with no hint, is malformed saying what OA exports are."""
        with pytest.raises(MalformedMessage, match="neither JSON nor XML"):
            detect_format(b"a,b,c", filename="x", content_type=None)
