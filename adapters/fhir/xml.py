"""FHIR XML -> FHIR JSON (as a dict), parsed safely and converted along the release's models.

fhir.resources reads XML only through lxml, builds nested models bottom-up (so an error's
location is relative to the innermost element, not the resource) and fails with a bare KeyError
on an element it does not know, e.g. an STU3 `udi`. So the hub converts XML itself: defusedxml
parses it with DTDs, entities and external references refused (an entity bomb never expands),
and the conversion walks the model of the chosen release to know which elements repeat, which
are primitives (`value` attribute, extensions -> `_name`), which hold a resource (contained,
Bundle.entry.resource) and which is XHTML. Unknown elements are kept under their own name, so
validation then reports them with their full path like any other problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree
from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from fhir_core.utils import get_fhir_type_name, is_list_type, is_primitive_type

from adapters.fhir.errors import FhirRejected
from adapters.fhir.issues import Issue
from adapters.fhir.versions import model_class, type_prefix

if TYPE_CHECKING:
    # A type only: every parse goes through defusedxml.
    from xml.etree.ElementTree import Element  # nosec B405

    from adapters.fhir.versions import FhirVersion

ParseError = defusedxml.ElementTree.ParseError

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_INTEGER = re.compile(r"^[+-]?\d{1,19}$")
_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})


def parse_xml(payload: bytes, *, max_depth: int) -> Element:
    """The root element of a FHIR XML body; FhirRejected when it is unsafe, malformed or too deep."""
    try:
        root: Element = defusedxml.ElementTree.fromstring(payload, forbid_dtd=True)
    except DTDForbidden as exc:
        raise _invalid(
            "refused: the document has a DOCTYPE; FHIR XML has none, and a DTD can declare "
            "entities (entity expansion can exhaust memory)"
        ) from exc
    except EntitiesForbidden as exc:
        raise _invalid(
            f"refused: the document declares the entity {exc.name!r}; entities are never expanded"
        ) from exc
    except ExternalReferenceForbidden as exc:
        raise _invalid("refused: the document references an external resource; nothing is fetched") from exc
    except ParseError as exc:
        line, column = exc.position
        raise _invalid(
            f"not well-formed XML (line {line}, column {column + 1}): {_expat_reason(exc)}"
        ) from exc
    except (ValueError, LookupError) as exc:
        # expat refuses multi-byte declared encodings (GBK...) with a bare ValueError.
        raise _invalid(f"unreadable XML: {exc}; FHIR XML is UTF-8") from exc
    depth = _depth(root)
    if depth > max_depth:
        raise FhirRejected(
            "too_large",
            [Issue("too-long", None, f"XML nests {depth} elements deep; the limit is {max_depth}")],
        )
    namespace, name = split_tag(root.tag)
    if namespace != FHIR_NS:
        where = f"namespace {namespace!r}" if namespace else "no namespace"
        raise _invalid(f"the root element <{name}> is in {where}; FHIR XML uses {FHIR_NS!r}")
    return root


def split_tag(tag: str) -> tuple[str | None, str]:
    """(namespace, local name) of an ElementTree tag `{ns}name`."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def resource_to_json(element: Element, version: FhirVersion) -> dict[str, Any]:
    """A resource element as FHIR JSON, read with `version`'s models (unknown types: best effort)."""
    _, name = split_tag(element.tag)
    out: dict[str, Any] = {"resourceType": name}
    klass = model_class(version, name)
    if klass is None:
        out.update(_generic_children(element))
    else:
        _fill(out, element, klass, version)
    return out


@dataclass(slots=True)
class _Slot:
    """The occurrences of one child element: values, and primitive extensions beside them."""

    values: list[Any] = field(default_factory=list)
    extensions: list[dict[str, Any] | None] = field(default_factory=list)
    listed: bool = False
    primitive: bool = False


def _fill(out: dict[str, Any], element: Element, klass: Any, version: FhirVersion) -> None:
    for attribute in ("id", "url"):
        if attribute in element.attrib:
            out[attribute] = element.attrib[attribute]
    aliases: dict[str, str] = klass.get_alias_mapping()
    fields = klass.model_fields
    slots: dict[str, _Slot] = {}
    for child in element:
        _, name = split_tag(child.tag)
        field_name = aliases.get(name)
        slot = slots.setdefault(name, _Slot())
        if field_name is None:
            slot.values.append(_generic(child))
            continue
        info = fields[field_name]
        slot.listed = is_list_type(info)
        type_name = _type_name(info, version)
        if is_primitive_type(info):
            slot.primitive = True
            if type_name == "xhtml":
                slot.values.append(_xhtml(child))  # its children are markup, not extensions
                slot.extensions.append(None)
            else:
                slot.values.append(_primitive(child.get("value"), type_name))
                slot.extensions.append(_primitive_extension(child, version))
        elif type_name == "Resource":
            inner = list(child)
            slot.values.append(resource_to_json(inner[0], version) if len(inner) == 1 else _generic(child))
        else:
            sub = model_class(version, type_name) if type_name else None
            value: dict[str, Any] = {}
            if sub is None:
                value.update(_generic_children(child))
            else:
                _fill(value, child, sub, version)
            slot.values.append(value)
    for name, slot in slots.items():
        _store(out, name, slot)


def _store(out: dict[str, Any], name: str, slot: _Slot) -> None:
    if slot.listed:
        out[name] = slot.values
        if any(e is not None for e in slot.extensions):
            out[f"_{name}"] = slot.extensions
        return
    # A non-repeating element given twice stays a list: validation names it as a structure error.
    out[name] = slot.values[0] if len(slot.values) == 1 else slot.values
    if slot.primitive and len(slot.extensions) == 1 and slot.extensions[0] is not None:
        out[f"_{name}"] = slot.extensions[0]
    if out[name] is None:
        del out[name]


def _type_name(info: Any, version: FhirVersion) -> str | None:
    try:
        return str(get_fhir_type_name(info, type_prefix(version)))
    except ValueError:
        return None


def _primitive(text: str | None, type_name: str | None) -> Any:
    """The JSON value of a primitive's `value` attribute: booleans and numbers are not strings in JSON."""
    if text is None:
        return None
    if type_name == "boolean" and text in {"true", "false"}:
        return text == "true"
    if type_name in _INTEGER_TYPES and _INTEGER.match(text):
        return int(text)
    if type_name == "decimal":
        try:
            return Decimal(text)
        except InvalidOperation:
            return text  # validation reports it with its path
    return text


def _primitive_extension(child: Element, version: FhirVersion) -> dict[str, Any] | None:
    extension_class = model_class(version, "Extension")
    extensions: list[dict[str, Any]] = []
    for sub in child:
        value: dict[str, Any] = {}
        _fill(value, sub, extension_class, version)
        extensions.append(value)
    if not extensions and "id" not in child.attrib:
        return None
    out: dict[str, Any] = {"extension": extensions} if extensions else {}
    if "id" in child.attrib:
        out["id"] = child.attrib["id"]
    return out


def _xhtml(child: Element) -> str:
    try:
        return str(defusedxml.ElementTree.tostring(child, encoding="unicode", default_namespace=XHTML_NS))
    except ValueError:
        # Elements outside the XHTML namespace inside the div: keep them qualified.
        return str(defusedxml.ElementTree.tostring(child, encoding="unicode"))


def _generic(element: Element) -> Any:
    """An element no model describes: its value attribute, or its children as an object."""
    if len(element) == 0 and "value" in element.attrib:
        return element.attrib["value"]
    return _generic_children(element)


def _generic_children(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        _, name = split_tag(child.tag)
        value = _generic(child)
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


def _depth(root: Element) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _expat_reason(exc: Exception) -> str:
    # "not well-formed (invalid token): line 1, column 5" -> keep the reason, the position is ours.
    return str(exc).split(":", 1)[0]


def _invalid(reason: str) -> FhirRejected:
    return FhirRejected("invalid", [Issue("invalid", None, reason)])
