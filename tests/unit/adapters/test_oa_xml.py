"""Reading OA XML exports safely: entity bombs and external references refused, encodings, shapes."""

from __future__ import annotations

import codecs
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.oa.mapping import OaMapping
from adapters.oa.xml_reader import read_xml
from tests.unit.adapters._oa import mapping

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<工单列表><工单><故障描述>&lol9;</故障描述></工单></工单列表>""".encode()
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE 工单列表 [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<工单列表><工单><故障描述>&xxe;</故障描述></工单></工单列表>""".encode()
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE 工单列表 SYSTEM "http://203.0.113.9/oa.dtd">
<工单列表><工单><故障描述>x</故障描述></工单></工单列表>""".encode()
PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE 工单列表 [<!ENTITY % remote SYSTEM "http://203.0.113.9/x.dtd"> %remote;]>
<工单列表/>""".encode()


def read(data: bytes, oa_mapping: OaMapping | None = None) -> list[dict[str, object]]:
    return [dict(r.fields) for r in read_xml(data, filename="x.xml", mapping=oa_mapping or mapping()).records]


def limited(**limits: int) -> OaMapping:
    base = mapping()
    return base.model_copy(update={"limits": base.limits.model_copy(update=limits)})


class TestSafety:
    def test_billion_laughs_is_refused(self) -> None:
        """An entity-expansion bomb is refused before expansion, saying an entity was declared."""
        with pytest.raises(
            MalformedMessage, match=r"x\.xml: refused: the document declares the entity 'lol'.*billion laughs"
        ):
            read(BILLION_LAUGHS)

    def test_external_entity_is_refused(self) -> None:
        """An external entity (file:///etc/passwd) is refused and never read."""
        with pytest.raises(
            MalformedMessage,
            match=r"external entity 'xxe' \(file:///etc/passwd\); external entities are never read",
        ):
            read(EXTERNAL_ENTITY)

    def test_external_dtd_is_refused(self) -> None:
        """A DOCTYPE pointing at a remote DTD is refused; nothing is fetched."""
        with pytest.raises(
            MalformedMessage, match=r"refers to an external resource \(http://203\.0\.113\.9/oa\.dtd\)"
        ):
            read(EXTERNAL_DTD)

    def test_parameter_entity_is_refused(self) -> None:
        """A parameter entity pointing outside is refused."""
        with pytest.raises(MalformedMessage, match="refused"):
            read(PARAMETER_ENTITY)

    def test_internal_doctype_without_entities_is_accepted(self) -> None:
        """A harmless DOCTYPE with no entities does not stop the export."""
        assert read(b"<!DOCTYPE a><a><record><x>1</x></record></a>") == [{"x": "1"}]

    def test_too_deep_is_refused(self) -> None:
        """Elements nested deeper than limits.max_depth are refused, naming the line."""
        data = b"<a>\n" + b"<b>" * 10 + b"</b>" * 10 + b"</a>"
        with pytest.raises(MalformedMessage, match=r"nested deeper than 5 levels at line 2"):
            read(data, limited(max_depth=5))

    def test_too_many_records(self) -> None:
        """More records than limits.max_records is refused."""
        with pytest.raises(MalformedMessage, match=r"more than 2 records"):
            read(b"<a><record/><record/><record/></a>", limited(max_records=2))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_raise_only_malformed(self, data: bytes) -> None:
        """Whatever the bytes, the XML reader returns records or raises MalformedMessage."""
        with contextlib.suppress(MalformedMessage):
            read(data)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    "<工单>",
                    "</工单>",
                    "<a>",
                    "</a>",
                    "<记录 x='1'>",
                    "</记录>",
                    "文字",
                    "&amp;",
                    "&lol;",
                    "<![CDATA[x]]>",
                    "<!DOCTYPE a>",
                    "<!ENTITY e 'v'>",
                    '<?xml version="1.0" encoding="GBK"?>',
                    "<?pi x?>",
                    "<!-- c -->",
                    "<b/>",
                    "\x00",
                    "&#x0;",
                    "&#20013;",
                    "]]>",
                    "<配件列表><配件>主板</配件></配件列表>",
                ]
            ),
            max_size=12,
        ),
        st.sampled_from(["utf-8", "gbk", "utf-16"]),
    )
    def test_arbitrary_markup_raises_only_malformed(self, parts: list[str], encoding: str) -> None:
        """Whatever markup is thrown together, the reader returns records or raises MalformedMessage."""
        with contextlib.suppress(MalformedMessage):
            read("".join(parts).encode(encoding))


class TestEncodings:
    def test_gbk_declared(self) -> None:
        """A GBK document that says so in its declaration decodes (expat alone cannot)."""
        data = '<?xml version="1.0" encoding="GBK"?><a><工单><故障描述>屏幕闪烁</故障描述></工单></a>'.encode(
            "gbk"
        )
        assert read(data) == [{"故障描述": "屏幕闪烁"}]

    def test_gb2312_declared_with_gbk_only_characters(self) -> None:
        """A document declaring GB2312 but holding characters beyond it (as real exports do) decodes."""
        data = '<?xml version="1.0" encoding="gb2312"?><a><工单><报修人>王𬉼</报修人></工单></a>'.encode(
            "gb18030"
        )
        assert read(data) == [{"报修人": "王𬉼"}]

    def test_gbk_without_declaration(self) -> None:
        """A GBK document with no declaration is detected (strict UTF-8 fails, GB18030 reads it)."""
        assert read("<a><工单><科室>儿科</科室></工单></a>".encode("gbk")) == [{"科室": "儿科"}]

    def test_utf8_bom(self) -> None:
        """A UTF-8 document with a BOM decodes, whatever its declaration says."""
        data = (
            codecs.BOM_UTF8 + '<?xml version="1.0" encoding="UTF-8"?><a><工单><x>中</x></工单></a>'.encode()
        )
        assert read(data) == [{"x": "中"}]

    def test_utf16_with_bom(self) -> None:
        """A UTF-16 document with a BOM decodes."""
        assert read("<a><工单><x>中</x></工单></a>".encode("utf-16")) == [{"x": "中"}]

    def test_declaration_that_lies_is_refused_with_advice(self) -> None:
        """A document declaring UTF-8 but written in GBK is refused, naming the offset and the fix."""
        data = '<?xml version="1.0" encoding="UTF-8"?><a><工单><x>中文</x></工单></a>'.encode("gbk")
        with pytest.raises(
            MalformedMessage, match=r"declares encoding 'utf-8', but byte offset \d+ .*set `encoding`"
        ):
            read(data)

    def test_mapping_encoding_overrides_the_declaration(self) -> None:
        """`encoding: gbk` in the mapping reads a document whose declaration lies."""
        data = '<?xml version="1.0" encoding="UTF-8"?><a><工单><x>中文</x></工单></a>'.encode("gbk")
        assert read(data, mapping().model_copy(update={"encoding": "gbk"})) == [{"x": "中文"}]

    def test_unknown_declared_encoding(self) -> None:
        """A declared encoding Python does not know is refused, naming it."""
        with pytest.raises(MalformedMessage, match="unknown encoding 'x-klingon'"):
            read(b'<?xml version="1.0" encoding="x-klingon"?><a/>')


class TestShapes:
    def test_attributes_and_children_are_fields(self) -> None:
        """A record's attributes and child elements are its fields; blank children are empty text."""
        data = '<a><工单 单据类型="派工" 单据号="L1"><工单号>WX1</工单号><备注/></工单></a>'.encode()
        assert read(data) == [{"单据类型": "派工", "单据号": "L1", "工单号": "WX1", "备注": ""}]

    def test_groups_are_flattened(self) -> None:
        """Fields inside a group element join the record."""
        data = (
            "<a><工单><处理信息><维修工时>2</维修工时><维修费用>300</维修费用></处理信息></工单></a>".encode()
        )
        assert read(data) == [{"维修工时": "2", "维修费用": "300"}]

    def test_repeated_children_are_a_list(self) -> None:
        """A parts list of structured parts, even a single one, is a list of objects."""
        one = "<a><工单><配件列表><配件><名称>A</名称><数量>1</数量></配件></配件列表></工单></a>".encode()
        two = "<a><工单><配件列表><配件>A×1</配件><配件>B×2</配件></配件列表></工单></a>".encode()
        assert read(one) == [{"配件列表": ({"名称": "A", "数量": "1"},)}]
        assert read(two) == [{"配件列表": ("A×1", "B×2")}]

    def test_record_lines(self) -> None:
        """Each record knows the line its element starts on."""
        data = b"<a>\n<record><x>1</x></record>\n\n<record>\n<x>2</x></record></a>"
        assert [r.line for r in read_xml(data, filename="x.xml", mapping=mapping()).records] == [2, 4]

    def test_root_record(self) -> None:
        """A document whose root is itself a record (a webhook body) is one record."""
        assert read("<工单><工单号>WX1</工单号></工单>".encode()) == [{"工单号": "WX1"}]

    def test_no_record_elements_is_refused(self) -> None:
        """A document whose elements are none of records.xml_tags is refused, naming what it found."""
        with pytest.raises(
            MalformedMessage, match=r"no records: none of the elements under <root> .* the first is <row>"
        ):
            read(b"<root><row><x>1</x></row></root>")

    def test_empty_export_is_no_records(self) -> None:
        """An export with no records at all is read as empty."""
        assert read("<工单列表 导出时间='2024-07-01'/>".encode()) == []

    def test_not_well_formed_names_line_and_column(self) -> None:
        """A document that is not well-formed is refused with its line and column."""
        with pytest.raises(MalformedMessage, match=r"not well-formed XML at line 2, column \d+"):
            read(b"<a>\n<record><x>1</y></record></a>")
