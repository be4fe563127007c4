"""Reading an OA XML export safely: no entity expansion, no external entities, nothing fetched.

The parser is defusedxml's SAX driver over expat, with entity declarations and external
references refused: a "billion laughs" document or one pointing at file:///etc/passwd or an
external DTD is rejected with a message saying so, before anything is expanded or opened.

Expat only decodes UTF-8, UTF-16 and Latin-1, while Chinese OA systems write GBK and say so in
the declaration. So the bytes are decoded here (a BOM, else the declared encoding, else strict
UTF-8 then GB18030; the mapping's `encoding` overrides all of it), the declaration's encoding is
dropped, and expat reads UTF-8. GBK and GB2312 are read as GB18030, their superset.

Records are the elements named in the mapping's records.xml_tags; a record's attributes and
child elements are its fields; a child holding repeated elements (配件列表/配件) is a list.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# Only types come from xml.sax: exceptions, the handler base class and the input wrapper. The
# parser itself is defusedxml's (bandit flags the module name, not what is used from it).
from xml.sax import SAXException, SAXParseException  # nosec B406
from xml.sax.handler import ContentHandler  # nosec B406
from xml.sax.xmlreader import InputSource  # nosec B406

import defusedxml.sax
from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from adapters._files.encoding import decode_export
from adapters._files.header import normalise_label
from adapters.errors import MalformedMessage
from adapters.oa.nested import Child, child_records, rules_by_label
from adapters.oa.records import RecordSet, SourceRecord, TooDeepError, Unreadable, flatten_record

if TYPE_CHECKING:
    from collections.abc import Mapping
    from xml.sax.xmlreader import AttributesImpl, Locator  # nosec B406

    from adapters.oa.mapping import NestedRule, OaMapping

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DECLARATION = re.compile(rb"\A<\?xml\s[^>]*?\?>")
_DECLARED = re.compile(rb"""\sencoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_TEXT_DECLARATION = re.compile(r"\A<\?xml\s[^>]*?\?>")
_TEXT_ENCODING = re.compile(r"""\sencoding\s*=\s*("[^"]*"|'[^']*')""")
# What expat cannot decode but the GB family decoder can (GB18030 is a superset of them all).
_GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "ms936", "euc-cn", "x-gbk", "gb_2312-80"})


@dataclass(slots=True)
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)


def read_xml(data: bytes, *, filename: str, mapping: OaMapping) -> RecordSet:
    """Parse an XML export into records; raise MalformedMessage for anything unsafe or unreadable."""
    text, encoding = _decode(data, filename, mapping)
    body = _TEXT_DECLARATION.sub(lambda m: _TEXT_ENCODING.sub("", m.group(0)), text, count=1)
    handler = _Handler(filename, mapping)
    parser = defusedxml.sax.make_parser()
    parser.setContentHandler(handler)
    parser.forbid_dtd = False  # an internal DOCTYPE without entities is harmless; entities are not
    parser.forbid_entities = True
    parser.forbid_external = True
    source = InputSource(filename)
    source.setByteStream(io.BytesIO(body.encode("utf-8", "surrogatepass")))
    try:
        parser.parse(source)
    except EntitiesForbidden as exc:
        if exc.sysid or exc.pubid:
            raise MalformedMessage(
                f"{filename}: refused: the document declares the external entity {exc.name!r} "
                f"({exc.sysid or exc.pubid}); external entities are never read"
            ) from exc
        raise MalformedMessage(
            f"{filename}: refused: the document declares the entity {exc.name!r}; OA exports may not "
            "declare entities (entity expansion can exhaust memory: the 'billion laughs' attack)"
        ) from exc
    except ExternalReferenceForbidden as exc:
        raise MalformedMessage(
            f"{filename}: refused: the document refers to an external resource ({exc.sysid or exc.pubid}); "
            "external entities and DTDs are never fetched"
        ) from exc
    except DTDForbidden as exc:  # not enabled above; kept so a future switch still fails clearly
        raise MalformedMessage(f"{filename}: refused: the document has a DTD") from exc
    except SAXParseException as exc:
        raise MalformedMessage(
            f"{filename}: not well-formed XML at line {exc.getLineNumber()}, column "
            f"{exc.getColumnNumber()}: {exc.getMessage()}"
        ) from exc
    except SAXException as exc:
        raise MalformedMessage(f"{filename}: XML cannot be read: {exc.getMessage()}") from exc
    except ValueError as exc:  # expat refusing an encoding it still found declared
        raise MalformedMessage(f"{filename}: XML cannot be read: {exc}") from exc
    return handler.result(encoding)


def _decode(data: bytes, filename: str, mapping: OaMapping) -> tuple[str, str]:
    if mapping.encoding != "auto" or data.startswith(_BOMS):
        decoded = decode_export(data, filename=filename, encoding=mapping.encoding)
        return decoded.text, decoded.encoding
    declaration = _DECLARATION.match(data)
    declared = _DECLARED.search(declaration.group(0)) if declaration else None
    if declared is None:
        decoded = decode_export(data, filename=filename)
        return decoded.text, decoded.encoding
    name = declared.group(1).decode("ascii").lower()
    codec = "gb18030" if name in _GB_FAMILY else name
    try:
        return data.decode(codec), codec
    except LookupError as exc:
        raise MalformedMessage(f"{filename}: declares the unknown encoding {name!r}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"{filename}: declares encoding {name!r}, but byte offset {exc.start} "
            f"({data[exc.start : exc.start + 4].hex(' ')}) is not {name}; if the declaration is wrong, "
            "set `encoding` in the mapping"
        ) from exc
    except UnicodeError as exc:  # codecs that are not character sets: `undefined`, `punycode`
        raise MalformedMessage(
            f"{filename}: declares encoding {name!r}, which cannot decode it: {exc}"
        ) from exc


class _Handler(ContentHandler):
    """Builds one small tree per record (nothing outside records is kept), counting and bounding."""

    def __init__(self, filename: str, mapping: OaMapping) -> None:
        super().__init__()
        self.filename = filename
        self.tags = frozenset(normalise_label(t) for t in mapping.records.xml_tags)
        self.mapping = mapping
        self.nested = rules_by_label(mapping)
        self.limits = mapping.limits
        self.locator: Locator | None = None
        self.depth = 0
        self.stack: list[_Node] = []
        self.found: list[tuple[int, dict[str, Any], list[Child]]] = []
        self.root: str | None = None
        self.others: list[str] = []

    def setDocumentLocator(self, locator: Locator) -> None:  # noqa: N802 - the SAX API's name
        self.locator = locator

    def startElement(self, name: str, attrs: AttributesImpl) -> None:  # noqa: N802
        self.depth += 1
        line = (self.locator.getLineNumber() if self.locator is not None else None) or 0
        if self.depth > self.limits.max_depth:
            raise MalformedMessage(
                f"{self.filename}: elements nested deeper than {self.limits.max_depth} levels at line {line} "
                "(limits.max_depth)"
            )
        if self.root is None:
            self.root = name
        node = _Node(name, dict(attrs.items()), line)
        if self.stack:
            self.stack[-1].children.append(node)
            self.stack.append(node)
        elif normalise_label(name) in self.tags:
            self.stack.append(node)
        elif self.depth == 2:
            self.others.append(name)

    def endElement(self, name: str) -> None:  # noqa: N802, ARG002 - expat checks the tags match
        self.depth -= 1
        if not self.stack:
            return
        node = self.stack.pop()
        if self.stack:
            return
        children: list[Child] = []
        self.found.append((node.line, _split_fields(node, self.nested, children), children))
        if len(self.found) > self.limits.max_records:
            raise MalformedMessage(
                f"{self.filename}: more than {self.limits.max_records:,} records (limits.max_records)"
            )

    def characters(self, content: str) -> None:
        if self.stack:
            self.stack[-1].text.append(content)

    def result(self, encoding: str) -> RecordSet:
        if not self.found and self.others:
            tags = ", ".join(sorted(self.tags))
            raise MalformedMessage(
                f"{self.filename}: no records: none of the elements under <{self.root}> is named {tags} "
                f"(records.xml_tags in the mapping); the first is <{self.others[0]}>"
            )
        records: list[SourceRecord] = []
        broken: list[Unreadable] = []
        for index, (line, fields, children) in enumerate(self.found, start=1):
            position = f"record:{index}"
            try:
                flat = flatten_record(fields, max_depth=self.limits.max_depth)
            except TooDeepError as exc:
                reason = f"record {index}: {exc}"
                broken.append(Unreadable.at(index, line, position, "too_deep", reason, file=self.filename))
                continue
            parent = SourceRecord(index=index, line=line, position=position, fields=flat)
            records.append(parent)
            if children:
                more, bad = child_records(parent, children, self.mapping, self.nested, self.filename)
                records.extend(more)
                broken.extend(bad)
        return RecordSet("xml", encoding, tuple(records), tuple(broken))


def _split_fields(node: _Node, rules: Mapping[str, NestedRule], out: list[Child]) -> dict[str, Any]:
    """As `_fields`, but children a nested rule names go to `out` (with their own lines), not the record."""
    return _fields(_take_nested(node, rules, out)) if rules else _fields(node)


def _take_nested(node: _Node, rules: Mapping[str, NestedRule], out: list[Child]) -> _Node:
    """A copy of `node` without the elements nested rules name (looked for in its groups too)."""
    kept = _Node(node.tag, node.attrs, node.line, node.text)
    for child in node.children:
        if normalise_label(child.tag) in rules and (child.children or child.attrs):
            # <审批记录><审批/><审批/></审批记录> holds records; <维修结果>..</维修结果> is one
            listed = len({c.tag for c in child.children}) == 1 and all(
                c.children or c.attrs for c in child.children
            )
            items = child.children if listed else [child]
            out.extend(Child(child.tag, n, item.line, _fields(item)) for n, item in enumerate(items, start=1))
        elif child.children:
            kept.children.append(_take_nested(child, rules, out))
        else:
            kept.children.append(child)
    return kept


def _fields(node: _Node) -> dict[str, Any]:
    """A record or group: its attributes, then its children (a repeated child becomes a list)."""
    out: dict[str, Any] = dict(node.attrs)
    grouped: dict[str, list[Any]] = {}
    for child in node.children:
        grouped.setdefault(child.tag, []).append(_value(child))
    for tag, values in grouped.items():
        out.setdefault(tag, values[0] if len(values) == 1 else values)
    return out


def _value(node: _Node) -> Any:
    if not node.children:
        text = "".join(node.text).strip()
        return text if text or not node.attrs else dict(node.attrs)
    tags = {child.tag for child in node.children}
    only = node.children[0]
    if len(tags) == 1 and (len(node.children) > 1 or only.children or only.attrs):
        return [_value(child) for child in node.children]  # 配件列表 holding 配件 elements
    return _fields(node)
