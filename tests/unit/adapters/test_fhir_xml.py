"""FHIR XML: parsed without entity expansion, converted along the release's models, errors by path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.fhir import FhirRejected, read_request
from adapters.fhir.validate import Invalid, Valid
from tests.unit.adapters._fhir import mapping

NS = 'xmlns="http://hl7.org/fhir"'
XML = "application/fhir+xml"


def read(xml: str, content_type: str | None = XML) -> Valid | Invalid:
    parsed = read_request(xml.encode(), content_type, mapping())
    assert isinstance(parsed, Valid | Invalid)
    return parsed


def rejected(xml: str | bytes) -> FhirRejected:
    payload = xml.encode() if isinstance(xml, str) else xml
    with pytest.raises(FhirRejected) as caught:
        read_request(payload, XML, mapping())
    return caught.value


class TestSafety:
    def test_refuses_entity_bomb(self) -> None:
        """A billion-laughs document is refused before any entity is expanded."""
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            f'<Device {NS}><manufacturer value="&lol2;"/></Device>'
        )
        exc = rejected(bomb)
        assert exc.kind == "invalid"
        assert "refused" in exc.issues[0].reason

    def test_refuses_external_entity(self) -> None:
        """A document pointing at an external entity (file:///etc/passwd) is refused, nothing is read."""
        xxe = (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            f'<Device {NS}><manufacturer value="&x;"/></Device>'
        )
        exc = rejected(xxe)
        assert "refused" in exc.issues[0].reason
        assert "root:" not in str(exc)

    def test_refuses_doctype(self) -> None:
        """Any DOCTYPE is refused: FHIR XML has none."""
        assert (
            "DOCTYPE" in rejected(f'<!DOCTYPE Device><Device {NS}><id value="a"/></Device>').issues[0].reason
        )

    def test_refuses_malformed_xml_with_position(self) -> None:
        """Malformed XML is refused with line and column."""
        exc = rejected(f"<Device {NS}>\n<id value='a'>\n</Device>")
        assert "line 3" in exc.issues[0].reason

    def test_refuses_wrong_namespace(self) -> None:
        """A root element outside the FHIR namespace is refused, naming the namespace expected."""
        assert "http://hl7.org/fhir" in rejected("<Device><id value='a'/></Device>").issues[0].reason

    def test_refuses_deep_nesting(self) -> None:
        """XML nested beyond max_depth is refused as too large."""
        deep = f"<Device {NS}>" + "<extension>" * 80 + "</extension>" * 80 + "</Device>"
        assert rejected(deep).kind == "too_large"

    def test_refuses_gbk_declared_documents(self) -> None:
        """FHIR XML is UTF-8; a GBK declaration is refused as unreadable, not guessed."""
        gbk = f'<?xml version="1.0" encoding="GBK"?><Device {NS}><manufacturer value="迈瑞"/></Device>'
        assert rejected(gbk.encode("gbk")).kind == "invalid"


class TestConversion:
    def test_device_fields(self) -> None:
        """Repeating elements become lists and primitives their values, as in FHIR JSON."""
        parsed = read(
            f"""<Device {NS}><id value="d1"/>
              <identifier><system value="urn:a"/><value value="1"/></identifier>
              <identifier><value value="2"/></identifier>
              <udiCarrier><deviceIdentifier value="0694"/><issuer value="urn:gs1"/></udiCarrier>
              <status value="active"/><manufacturer value="迈瑞"/></Device>"""
        )
        assert isinstance(parsed, Valid)
        device = parsed.model
        assert [i.value for i in device.identifier] == ["1", "2"]
        assert device.udiCarrier[0].deviceIdentifier == "0694"
        assert device.manufacturer == "迈瑞"

    def test_numbers_and_booleans(self) -> None:
        """Decimal and boolean values keep their JSON types (exact decimal, real boolean)."""
        parsed = read(
            f"""<SupplyDelivery {NS}><status value="completed"/>
              <suppliedItem><quantity><value value="12.50"/></quantity></suppliedItem></SupplyDelivery>"""
        )
        assert isinstance(parsed, Valid)
        assert parsed.model.suppliedItem[0].quantity.value == Decimal("12.50")
        named = read(
            f'<Device {NS}><name><value value="泵"/><type value="registered-name"/>'
            '<display value="true"/></name></Device>'
        )
        assert isinstance(named, Valid)
        assert named.model.name[0].display is True

    def test_primitive_extension(self) -> None:
        """Extensions on a primitive become its `_element` companion."""
        parsed = read(
            f"""<Device {NS}><status value="active"><extension url="urn:x"><valueString value="y"/>
              </extension></status></Device>"""
        )
        assert isinstance(parsed, Valid)
        assert parsed.model.status__ext.extension[0].valueString == "y"

    def test_narrative_div(self) -> None:
        """The XHTML narrative is kept as its markup."""
        parsed = read(
            f"""<Device {NS}><text><status value="generated"/>
              <div xmlns="http://www.w3.org/1999/xhtml"><p>呼吸机</p></div></text></Device>"""
        )
        assert isinstance(parsed, Valid)
        assert "<p>呼吸机</p>" in parsed.model.text.div

    def test_contained_resource(self) -> None:
        """A contained resource is converted with its own type's model."""
        parsed = read(
            f"""<SupplyDelivery {NS}><contained><InventoryItem><id value="i"/><status value="active"/>
              <instance><lotNumber value="L1"/></instance></InventoryItem></contained>
              <status value="completed"/></SupplyDelivery>"""
        )
        assert isinstance(parsed, Valid)
        assert parsed.model.contained[0].instance.lotNumber == "L1"

    def test_unknown_element_is_named_by_path(self) -> None:
        """An element the release does not have is reported at its full path."""
        parsed = read(
            f'<Device {NS}><udiCarrier><deviceIdentifier value="1"/><issuer value="u"/>'
            '<colour value="red"/></udiCarrier></Device>'
        )
        assert isinstance(parsed, Invalid)
        assert parsed.issues[0].path == "Device.udiCarrier[0].colour"

    def test_sniffed_without_content_type(self) -> None:
        """An XML body without a Content-Type is recognised and read."""
        assert isinstance(read(f'<Device {NS}><id value="a"/></Device>', None), Valid)

    def test_r4b_xml(self) -> None:
        """R4B XML (SupplyRequest.itemCodeableConcept) is read as R4B after R5 fails."""
        parsed = read(
            f"""<SupplyRequest {NS}><status value="active"/><itemCodeableConcept><text value="纱布"/>
              </itemCodeableConcept><quantity><value value="3"/></quantity></SupplyRequest>"""
        )
        assert isinstance(parsed, Valid)
        assert parsed.version == "R4B"
