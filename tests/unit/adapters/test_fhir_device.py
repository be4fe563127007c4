"""FHIR Device -> asset.registered: identifiers, the subject, UDI carriers, details, refusals."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from adapters.fhir.mapping import FhirMapping
from schemas._base import DeptRef, Identifier
from schemas.assets import AssetRegistered, AssetStatus, AssetStatusChanged, Category
from schemas.ids import asset_id_for, event_id_for
from tests.unit.adapters._fhir import HRP_CARD, RECEIVED, SENDER, device, mapping, run

VENT_HRF = "(01)06942527215250(11)210704(21)ASF21663711"


def registered(body: dict, **kwargs) -> AssetRegistered:
    result = run(body, **kwargs)
    assert not result.failures, result.failures
    assert len(result.events) == 1
    event = result.events[0].event
    assert isinstance(event, AssetRegistered)
    return event


def ids(event: AssetRegistered) -> list[tuple[str, str]]:
    return [(i.scheme, i.value) for i in event.payload.identifiers]


class TestIdentifiers:
    def test_all_identifier_kinds(self) -> None:
        """A Device yields its mapped identifiers, unmapped ones qualified by their system, serial, UDI
        and its sender's Device id, in that order."""
        event = registered(
            device(
                identifier=[
                    {"system": HRP_CARD, "value": "ZC-2021-00043"},
                    {"system": "http://hospital.example.cn/fhir/sid/his-device", "value": "HIS-9"},
                    {"system": "urn:unknown", "value": "X"},
                ],
                manufacturer="德尔格",
                serialNumber="ASF21663711",
                udiCarrier=[
                    {"deviceIdentifier": "06942527215250", "issuer": "urn:gs1", "carrierHRF": VENT_HRF}
                ],
            )
        )
        assert ids(event) == [
            ("hrp.card", "ZC-2021-00043"),
            ("his.code", "HIS-9"),
            ("ns", "urn:unknown|X"),
            ("serial", "德尔格|ASF21663711"),
            ("udi", VENT_HRF),
            ("fhir.device", f"{SENDER}/Device/dev-1"),
        ]

    def test_subject_is_the_hrp_asset(self) -> None:
        """A device with an HRP card number lands on the asset the HRP ledger mints for that card."""
        event = registered(device())
        assert event.subject == asset_id_for(Identifier(scheme="hrp.card", value="ZC-2021-00043"))

    def test_subject_follows_scheme_preference(self) -> None:
        """Without an HRP card, the subject comes from the next scheme in subject_schemes (serial before udi)."""
        event = registered(device(identifier=[], manufacturer="迈瑞", serialNumber="S1"))
        assert event.subject == asset_id_for(Identifier(scheme="serial", value="迈瑞|S1"))

    def test_serial_from_sno_identifier(self) -> None:
        """An identifier typed SNO without a system is the serial number."""
        event = registered(
            device(
                manufacturer="GE",
                identifier=[
                    {"type": {"coding": [{"code": "SNO"}]}, "value": "SN-7"},
                ],
            )
        )
        assert ("serial", "GE|SN-7") in ids(event)
        assert event.payload.details.serial_number == "SN-7"

    def test_no_identifier_is_refused(self) -> None:
        """A device with nothing to key it by fails, naming Device.identifier: an identifier without
        a system, an id without a sender."""
        result = run(
            {"resourceType": "Device", "id": "1", "status": "active", "identifier": [{"value": "1"}]}
        )
        assert [(f.position, f.code, f.location.field) for f in result.failures] == [
            ("resource", "required", "Device.identifier")
        ]
        assert result.events == ()

    def test_gtin_alone_is_not_an_asset_identifier(self) -> None:
        """A UDI carrier holding only a device identifier (a product) is not an asset identifier."""
        event = registered(device(udiCarrier=[{"deviceIdentifier": "06942527215250", "issuer": "urn:gs1"}]))
        assert [s for s, _ in ids(event)] == ["hrp.card", "fhir.device"]
        assert event.payload.details.udi == "06942527215250"


class TestUdi:
    def test_aidc_is_parsed(self) -> None:
        """A base64 carrierAIDC with FNC1/GS is read with biip into the canonical HRI and the serial."""
        aidc = base64.b64encode(b"]d2010694324310674711211111\x1d21FV21488637").decode()
        event = registered(
            device(
                manufacturer="迈瑞",
                udiCarrier=[
                    {"deviceIdentifier": "06943243106747", "issuer": "urn:gs1", "carrierAIDC": aidc},
                ],
            )
        )
        assert ("udi", "(01)06943243106747(11)211111(21)FV21488637") in ids(event)
        assert ("serial", "迈瑞|FV21488637") in ids(event)

    def test_brace_form_is_normalised(self) -> None:
        """The FDA `{01}` brace form of a carrierHRF becomes the canonical parenthesised form."""
        event = registered(
            device(
                udiCarrier=[
                    {
                        "deviceIdentifier": "00844588003288",
                        "issuer": "urn:gs1",
                        "carrierHRF": "{01}00844588003288{17}141120{10}7654321D{21}10987654d321",
                    }
                ]
            )
        )
        assert event.payload.details.udi == "(01)00844588003288(17)141120(10)7654321D(21)10987654d321"

    def test_hibcc_is_kept_verbatim(self) -> None:
        """A HIBCC carrier is kept verbatim as the udi identifier (biip reads GS1 only)."""
        hibcc = "+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C"
        event = registered(
            device(
                udiCarrier=[
                    {
                        "deviceIdentifier": "H123PARTNO1234567890120",
                        "issuer": "urn:hibcc",
                        "carrierHRF": hibcc,
                    }
                ]
            )
        )
        assert ("udi", hibcc) in ids(event)

    def test_unparsable_carrier_is_kept_not_dropped(self) -> None:
        """A carrier biip cannot parse stays in the details verbatim and is not used as an identifier."""
        event = registered(
            device(udiCarrier=[{"deviceIdentifier": "x", "issuer": "urn:gs1", "carrierHRF": "ABC-123"}])
        )
        assert event.payload.details.udi == "ABC-123"
        assert "udi" not in [s for s, _ in ids(event)]


class TestDetails:
    def test_documented_fields(self) -> None:
        """Name, model, manufacturer, serial, category, department, location and status are filled."""
        event = registered(
            device(
                displayName="呼吸机",
                modelNumber="Savina 300",
                manufacturer="德尔格",
                serialNumber="ASF1",
                type=[
                    {
                        "coding": [
                            {
                                "system": "http://hospital.example.cn/fhir/CodeSystem/nmpa-68-class",
                                "code": "6854",
                                "display": "手术室、急救室、诊疗室设备及器具",
                            }
                        ]
                    }
                ],
                location={"reference": "Location/icu-5f"},
            )
        )
        details = event.payload.details
        assert (details.name, details.model, details.manufacturer, details.serial_number) == (
            "呼吸机", "Savina 300", "德尔格", "ASF1",
        )  # fmt: skip
        assert details.category == Category(code="6854", name="手术室、急救室、诊疗室设备及器具")
        assert (details.department, details.location) == (
            DeptRef(code="0101", name="重症医学科"),
            "住院部5楼ICU",
        )
        assert (details.status, details.status_text) == (AssetStatus.IN_USE, "active")

    def test_r5_name_choice(self) -> None:
        """Among R5 names, the one marked display wins, else the user-friendly one."""
        shown = registered(
            device(
                name=[
                    {"value": "A", "type": "registered-name"},
                    {"value": "B", "type": "patient-reported-name", "display": True},
                ]
            )
        )
        friendly = registered(
            device(
                name=[{"value": "A", "type": "registered-name"}, {"value": "B", "type": "user-friendly-name"}]
            )
        )
        assert (shown.payload.details.name, friendly.payload.details.name) == ("B", "B")

    def test_r4b_device(self) -> None:
        """An R4B Device (deviceName, statusReason) is read as R4B and gives the same kind of event."""
        event = registered(
            {
                "resourceType": "Device",
                "id": "d4",
                "identifier": [{"system": HRP_CARD, "value": "ZC-1"}],
                "deviceName": [
                    {"name": "BeneFusion", "type": "model-name"},
                    {"name": "输液泵", "type": "user-friendly-name"},
                ],
                "status": "inactive",
                "statusReason": [{"text": "停用"}],
            }
        )
        assert event.payload.details.name == "输液泵"
        assert event.payload.details.status == AssetStatus.IDLE

    def test_availability_refines_status(self) -> None:
        """R5 availabilityStatus `damaged` makes an active device under repair, keeping both words,
        and is a status change too: a registration only fills fields the ledger left empty."""
        result = run(device(availabilityStatus={"coding": [{"code": "damaged"}]}))
        assert not result.failures, result.failures
        event, change = (e.event for e in result.events)
        assert isinstance(event, AssetRegistered)
        assert (event.payload.details.status, event.payload.details.status_text) == (
            AssetStatus.UNDER_REPAIR, "active/damaged",
        )  # fmt: skip
        assert isinstance(change, AssetStatusChanged)
        assert (change.subject, change.occurred_at) == (event.subject, event.occurred_at)
        assert (change.payload.status, change.payload.status_text) == (
            AssetStatus.UNDER_REPAIR,
            "active/damaged",
        )
        again = run(device(availabilityStatus={"coding": [{"code": "damaged"}]}))
        assert again.events[1].event.event_id == change.event_id, "the same report is the same event"
        repaired = run(device(availabilityStatus={"coding": [{"code": "available"}]}))
        assert repaired.events[1].event.event_id != change.event_id

    def test_device_status_alone_is_no_status_change(self) -> None:
        """Device.status `active` says the record is in use, not that the device is ready: no change."""
        assert registered(device()).payload.details.status == AssetStatus.IN_USE

    def test_location_by_department_name(self) -> None:
        """A location given only by a department's name resolves to that department."""
        event = registered(device(location={"display": "心内科"}))
        assert event.payload.details.department == DeptRef(code="0201", name="心血管内科")

    def test_unknown_location_kept_by_name(self) -> None:
        """An unknown location is kept as text, without a department."""
        event = registered(device(location={"display": "7号楼库房"}))
        assert (event.payload.details.department, event.payload.details.location) == (None, "7号楼库房")

    def test_strict_locations_refuse_unknown(self) -> None:
        """With strict_locations, an unknown location fails, naming Device.location."""
        strict = FhirMapping.model_validate({**mapping().model_dump(), "strict_locations": True})
        result = run(device(location={"display": "7号楼库房"}), m=strict)
        assert [f.location.field for f in result.failures] == ["Device.location"]
        assert "'7号楼库房'" in result.failures[0].reason

    def test_envelope(self) -> None:
        """Event id, times and source follow the contract: uuid5 over (fhir, message id, Device/<id>:0)."""
        event = registered(device(meta={"lastUpdated": "2024-06-30T09:15:00+08:00"}), message_id="dev-1")
        assert event.event_id == event_id_for("fhir", "dev-1", "Device/dev-1:0")
        assert event.occurred_at == datetime(2024, 6, 30, 1, 15, tzinfo=UTC)
        assert event.recorded_at == RECEIVED
        assert (event.source.system, event.source.message_id, event.source.adapter_version) == (
            "fhir", "dev-1", "fhir/1.0.0",
        )  # fmt: skip

    def test_patient_is_never_read(self) -> None:
        """An R4B Device's patient reference appears nowhere in the event."""
        result = run(
            {
                "resourceType": "Device",
                "id": "d",
                "identifier": [{"system": HRP_CARD, "value": "Z"}],
                "patient": {"reference": "Patient/p-123", "display": "张三"},
            }
        )
        dumped = result.events[0].event.model_dump_json()
        assert "p-123" not in dumped
        assert "张三" not in dumped


EUI64_SYSTEM = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"


def bare(device_id: str, **fields: object) -> dict:
    """A Device that has only its server-local id (and `fields`)."""
    return {"resourceType": "Device", "id": device_id, "status": "active", **fields}


def in_bundle(*entries: tuple[str, dict]) -> dict:
    """A batch Bundle of (fullUrl, resource) entries."""
    return {
        "resourceType": "Bundle",
        "id": "b-ns",
        "type": "batch",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "PUT", "url": f"Device/{r['id']}"}}
            for url, r in entries
        ],
    }


class TestNamespaces:
    def test_unlisted_system_is_kept_qualified_and_names_the_device_before_its_id(self) -> None:
        """An identifier of a system the mapping does not list is kept as `ns` `<system>|<value>`
        and is the subject: the sender's Device.id is never preferred to it."""
        event = registered(device(identifier=[{"system": "urn:vendor:tag", "value": "TAG-1"}]))
        assert ids(event) == [("ns", "urn:vendor:tag|TAG-1"), ("fhir.device", f"{SENDER}/Device/dev-1")]
        assert event.subject == asset_id_for(Identifier(scheme="ns", value="urn:vendor:tag|TAG-1"))

    def test_eui64_system_is_normalised(self) -> None:
        event = registered(device(identifier=[{"system": EUI64_SYSTEM, "value": "00-12-ab-34-cd-56-ef-78"}]))
        assert ids(event)[0] == ("eui64", "0012AB34CD56EF78")

    def test_two_senders_device_1_are_two_assets(self) -> None:
        """`Device/1` of two servers (each Bundle entry's fullUrl names its server): two assets."""
        subjects = []
        for url in ("http://a.example/fhir/Device/1", "https://b.example/r5/Device/1"):
            (emitted,) = run(in_bundle((url, bare("1"))), message_id=url).events
            subjects.append(emitted.event.subject)
        assert subjects == [
            asset_id_for(Identifier(scheme="fhir.device", value="http://a.example/fhir/Device/1")),
            asset_id_for(Identifier(scheme="fhir.device", value="https://b.example/r5/Device/1")),
        ]

    def test_id_only_device_from_an_unknown_sender_is_refused(self) -> None:
        """No fullUrl, no meta.source, no `sender` in the mapping: a bare `Device/1` names nothing."""
        result = run(bare("1"))
        assert [(f.code, f.location.field) for f in result.failures] == [("required", "Device.identifier")]
        assert "sender" in result.failures[0].reason

    def test_mapping_sender_qualifies_a_lone_resource(self) -> None:
        """A site with one FHIR sender names it in the mapping: its Device ids are kept under that name."""
        named = FhirMapping.model_validate({**mapping().model_dump(), "sender": "his-gw"})
        (emitted,) = run(bare("1"), m=named).events
        assert emitted.event.subject == asset_id_for(
            Identifier(scheme="fhir.device", value="his-gw/Device/1")
        )

    def test_meta_source_beats_the_mapping_sender(self) -> None:
        named = FhirMapping.model_validate({**mapping().model_dump(), "sender": "his-gw"})
        (emitted,) = run(bare("1", meta={"source": "http://pump-gw.example/fhir"}), m=named).events
        assert emitted.event.subject == asset_id_for(
            Identifier(scheme="fhir.device", value="http://pump-gw.example/fhir/Device/1")
        )

    def test_urn_full_url_names_no_server(self) -> None:
        """A `urn:uuid:` fullUrl is not a server: the id stays unqualified, so unused."""
        result = run(in_bundle(("urn:uuid:6d3d0c4e-2f0a-4b7e-9a51-0c3b9f5e1a01", bare("1"))))
        assert [f.location.field for f in result.failures] == ["Device.identifier"]
