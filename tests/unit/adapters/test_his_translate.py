"""The HIS translator per message type, with the fields each event documents."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from adapters.errors import MalformedMessage
from adapters.his.mapping import HisMapping, PatientSecretMissing, default_mapping
from adapters.his.patient import patient_token
from schemas._base import DeptRef, Identifier, LocationRef
from schemas.assets import AssetStatus, AssetStatusChanged, AssetUsed
from schemas.ids import asset_id_for, event_id_for, item_id_for
from schemas.inventory import InventoryConsumed, InventoryItemDefined, InventoryThresholdSet
from tests.unit.adapters.test_his_samples import RECEIVED, SECRET, hl7, mapping, run, sample

MSH = "MSH|^~\\&|HIS|XXRMYY|HUB|XXRMYY|20240616100000||{type}|{id}|P|2.5"
PID = "PID|1||MR7^^^XXRMYY^MR||某人^MOU REN||19700101|M"
UDI = "(01)06938123450010(17)271231(10)LOT2024A(21)SN0009"


def msh(message_type: str, control_id: str = "T1") -> str:
    return MSH.format(type=message_type, id=control_id)


def with_rules(**changes: object) -> HisMapping:
    """The default mapping with top-level fields or charge rules changed (validated again)."""
    data = default_mapping().model_dump()
    charges = changes.pop("charges", None)
    data.update(changes)
    if isinstance(charges, dict):
        data["charges"].update(charges)
    return mapping(HisMapping.model_validate(data))


def dft(*ft1_and_more: str, control_id: str = "T1") -> bytes:
    return hl7(msh("DFT^P03", control_id), PID, *ft1_and_more)


class TestChargesFromSamples:
    def test_ptca_sample_gives_two_consumptions_and_skips_the_service(self):
        """01: the balloon and the stent (UDI in PRT-10) become inventory.consumed; ECG monitoring is skipped."""
        result = run(sample("01_dft_p03_ptca_prt_utf8.hl7"))
        assert [e.position for e in result.events] == ["FT1:1", "FT1:2"]
        assert result.skipped == (
            "FT1:3: charge SV1001 is not a tracked consumable (no UDI, code not listed)",
        )
        assert result.failures == ()
        assert result.units == 3
        balloon = result.events[0].event
        assert isinstance(balloon, InventoryConsumed)
        assert balloon.subject == item_id_for("his", "HC0301")
        assert balloon.event_id == event_id_for("his", "DFT20240612001", "FT1:1")
        assert balloon.occurred_at == datetime(2024, 6, 12, 2, 15, tzinfo=UTC)  # FT1-4 10:15 in Shanghai
        assert balloon.recorded_at == RECEIVED
        assert (balloon.source.system, balloon.source.message_id, balloon.source.raw_ref) == (
            "his",
            "DFT20240612001",
            "raw-DFT20240612001",
        )
        p = balloon.payload
        assert p.location == LocationRef(department=DeptRef(code="0206", name="心导管室"))
        assert p.quantity == Decimal(1)
        assert p.udi == "(01)06938123450010(17)271231(10)LOT2024A(21)SN0001"
        assert p.barcode is not None
        assert (p.barcode.gtin, p.barcode.lot, p.barcode.serial, p.barcode.expiry) == (
            "06938123450010",
            "LOT2024A",
            "SN0001",
            date(2027, 12, 31),
        )
        assert (p.lot, p.serial) == ("LOT2024A", "SN0001")
        assert (p.procedure_code, p.charge_id) == ("37.6601", "CHG-240612-0001")
        assert p.patient_token == patient_token(SECRET, "XXRMYY", "MR20240001")

    def test_gbk_sample_department_arrives_through_a_traditional_alias(self):
        """02: GBK bytes; FT1-13's name 東區手術室 resolves to 0204; the UDI comes from ZFT-3."""
        (emitted,) = run(sample("02_dft_p03_pacemaker_gbk.hl7")).events
        p = emitted.event.payload
        assert isinstance(p, type(emitted.event.payload))
        assert p.location.department == DeptRef(code="0204", name="东区手术室")
        assert p.udi.startswith("(01)06938123450034")
        assert p.serial == "PMX00042"

    def test_gb18030_sample_reads_a_hex_escaped_element_string(self):
        """03: the `]d2…` UDI with `\\X1D\\` separators parses; PV1-3 ORTHO-W3 maps through `locations`."""
        (emitted,) = run(sample("03_dft_p03_hip_gb18030.hl7")).events
        p = emitted.event.payload
        assert p.udi == "]d2010693812345004117300101\x1d10HIP2406\x1d21HX-88017"
        assert (p.lot, p.serial) == ("HIP2406", "HX-88017")
        assert p.location == LocationRef(department=DeptRef(code="0205", name="骨科"), location="骨科三病区")

    def test_translation_is_deterministic(self):
        """The same bytes, mapping and context give identical events (ids included)."""
        payload = sample("01_dft_p03_ptca_prt_utf8.hl7")
        assert run(payload) == run(payload)


class TestChargeRules:
    def test_listed_code_without_udi_is_consumed(self):
        """With the default rule, an FT1-7 code matching `HC*` is a consumable even without a UDI."""
        result = run(dft("FT1|1|C1||20240616093000||CG|HC0999^敷料|||2|||0206"))
        (emitted,) = result.events
        assert emitted.event.payload.quantity == Decimal(2)
        assert emitted.event.payload.udi is None
        assert emitted.event.payload.barcode is None

    def test_with_udi_rule_skips_listed_codes_without_udi(self):
        """`consumables: with_udi` ignores the code list."""
        result = run(
            dft("FT1|1|C1||20240616093000||CG|HC0999|||2|||0206"),
            with_rules(charges={"consumables": "with_udi"}),
        )
        assert result.events == ()
        assert "not a tracked consumable" in result.skipped[0]

    def test_non_charge_transaction_types_are_skipped(self):
        """A credit (FT1-6 CD) is not a consumption."""
        result = run(dft("FT1|1|C1||20240616093000||CD|HC0301|||1|||0206", f"ZFT|1|GS1|{UDI}"))
        assert result.events == ()
        assert result.skipped == ("FT1:1: transaction type CD is not a charge (CG)",)

    def test_missing_quantity_fails_naming_ft1_10(self):
        """No FT1-10 and no default quantity: a Failure at FT1-10."""
        (failure,) = run(dft("FT1|1|C1||20240616093000||CG|HC0301||||||0206")).failures
        assert (failure.position, failure.code, failure.location.field) == (
            "FT1:1",
            "missing_field",
            "FT1-10",
        )

    def test_default_quantity_fills_an_empty_ft1_10(self):
        """`default_quantity: 1` makes an empty FT1-10 one unit."""
        result = run(
            dft("FT1|1|C1||20240616093000||CG|HC0301||||||0206"), with_rules(charges={"default_quantity": 1})
        )
        assert result.events[0].event.payload.quantity == Decimal(1)

    @pytest.mark.parametrize(
        ("quantity", "why"), [("abc", "not a number"), ("-1", "greater than 0"), ("NaN", "finite")]
    )
    def test_bad_quantities_fail(self, quantity, why):
        """A quantity that is not a positive finite number is a Failure quoting it."""
        (failure,) = run(dft(f"FT1|1|C1||20240616093000||CG|HC0301|||{quantity}|||0206")).failures
        assert failure.code == "invalid_number"
        assert why in failure.reason

    def test_empty_item_code_fails(self):
        """A consumable charge (UDI present) without FT1-7 cannot name its item."""
        (failure,) = run(dft("FT1|1|C1||20240616093000||CG||||1|||0206", f"ZFT|1|GS1|{UDI}")).failures
        assert (failure.code, failure.location.field) == ("missing_field", "FT1-7")

    def test_bad_transaction_date_fails_naming_ft1_4(self):
        """An unreadable FT1-4 is a Failure that quotes the value and names the field."""
        (failure,) = run(dft("FT1|1|C1||2024-13-45||CG|HC0301|||1|||0206")).failures
        assert (failure.code, failure.location.field, failure.location.segment) == (
            "invalid_timestamp",
            "FT1-4",
            "FT1",
        )
        assert "2024-13-45" in failure.reason

    def test_empty_ft1_4_falls_back_to_msh7(self):
        """Without FT1-4/FT1-5 the event happened at MSH-7 (site time)."""
        (emitted,) = run(dft("FT1|1|C1||||CG|HC0301|||1|||0206")).events
        assert emitted.event.occurred_at == datetime(2024, 6, 16, 2, 0, tzinfo=UTC)

    def test_unknown_department_keeps_the_charge_with_a_note(self):
        """The sample with department 9999: the consumption lands, department unknown, and a note names FT1-13."""
        result = run(sample("14_dft_p03_unknown_department.hl7"))
        assert result.failures == ()
        (emitted,) = result.events
        assert emitted.event.payload.location.department == DeptRef()
        (note,) = result.notes
        assert (note.code, note.location.segment, note.location.field) == (
            "department_unknown",
            "FT1",
            "FT1-13",
        )
        assert note.position == f"{emitted.position}#FT1-13"
        assert "'9999'" in note.reason

    def test_unknown_department_fails_when_strict(self):
        """`strict: [department]`: the sample with department 9999 is a Failure naming the code and FT1-13."""
        (failure,) = run(
            sample("14_dft_p03_unknown_department.hl7"), with_rules(strict=["department"])
        ).failures
        assert (failure.code, failure.location.field) == ("unknown_code", "FT1-13")
        assert "'9999'" in failure.reason
        assert failure.excerpt is None

    def test_unknown_department_passes_through_when_not_strict(self):
        """With strict_codes off, the source's code and name are kept as they are."""
        result = run(sample("14_dft_p03_unknown_department.hl7"), with_rules(strict_codes=False))
        assert result.events[0].event.payload.location.department == DeptRef(code="9999", name="未知科室")

    def test_department_falls_back_to_pv1_3(self):
        """No FT1-13/FT1-16: the PV1-3 point of care gives the place."""
        payload = hl7(msh("DFT^P03"), PID, "PV1|1|I|CCU-1^1^2", "FT1|1|C1||20240616093000||CG|HC0301|||1")
        (emitted,) = run(payload).events
        assert emitted.event.payload.location == LocationRef(
            department=DeptRef(code="0201", name="心血管内科"), location="CCU 1病区"
        )

    def test_no_department_anywhere_fails(self):
        """A consumption with no place at all cannot update stock: a Failure at FT1-13."""
        (failure,) = run(dft("FT1|1|C1||20240616093000||CG|HC0301|||1")).failures
        assert (failure.code, failure.location.field) == ("missing_field", "FT1-13")

    def test_non_gs1_udi_is_kept_and_flagged(self):
        """A UDI biip cannot parse stays in `udi` and `barcode.raw`, with parse_error set."""
        (emitted,) = run(
            dft("FT1|1|C1||20240616093000||CG|HC0301|||1|||0206", "ZFT|1|X|VENDOR-77-ABC")
        ).events
        barcode = emitted.event.payload.barcode
        assert emitted.event.payload.udi == "VENDOR-77-ABC"
        assert barcode is not None
        assert (barcode.raw, barcode.symbology) == ("VENDOR-77-ABC", "unknown")
        assert barcode.parse_error

    def test_prt16_is_used_when_prt10_is_empty(self):
        """A PRT with only PRT-16 (UDI device identifier) still carries the UDI; PRT-19/20 fill lot and serial."""
        payload = dft(
            "FT1|1|C1||20240616093000||CG|XX1|||1|||0206", "PRT|1|AD||EQUIP||||||||||||DI-0001|||LOT-P|SER-P"
        )
        (emitted,) = run(payload).events
        p = emitted.event.payload
        assert (p.udi, p.lot, p.serial) == ("DI-0001", "LOT-P", "SER-P")

    def test_a_prt_belongs_to_the_ft1_before_it(self):
        """The UDI of the second FT1 is not borrowed by the first."""
        payload = dft(
            "FT1|1|C1||20240616093000||CG|XX1|||1|||0206",
            "FT1|2|C2||20240616093000||CG|XX2|||1|||0206",
            f"PRT|1|AD||EQUIP||||||{UDI}",
        )
        result = run(payload)
        assert [e.position for e in result.events] == ["FT1:2"]
        assert result.skipped == ("FT1:1: charge XX1 is not a tracked consumable (no UDI, code not listed)",)


class TestDevices:
    def test_ventilator_sample(self):
        """04: one use per device; the ventilator spans its OBX-14 times; PV1-3 gives the department."""
        result = run(sample("04_oru_r01_ventilator_obx18.hl7"))
        assert [e.position for e in result.events] == ["OBX:1", "OBX:5"]
        vent = result.events[0].event
        assert isinstance(vent, AssetUsed)
        assert vent.subject == asset_id_for(Identifier(scheme="his.code", value="VENT-0032"))
        p = vent.payload
        assert (p.started_at, p.ended_at) == (
            datetime(2024, 6, 12, 0, 0, tzinfo=UTC),
            datetime(2024, 6, 12, 4, 0, tzinfo=UTC),
        )
        assert vent.occurred_at == p.started_at
        assert p.department == DeptRef(code="0202", name="呼吸与危重症医学科")
        assert (p.order_id, p.procedure_code) == ("VM-240612-0008", "VENT-MON")
        assert p.patient_token == patient_token(SECRET, "XXRMYY", "MR20240004")
        monitor = result.events[1].event
        assert monitor.subject == asset_id_for(Identifier(scheme="his.code", value="MON-0107"))
        assert monitor.payload.ended_at is None

    def test_prt_device_is_keyed_by_its_udi(self):
        """05: a PRT with role EQUIP names the device by UDI; PRT-11/12 are start and end."""
        (emitted,) = run(sample("05_oru_r01_infusion_pump_prt.hl7")).events
        udi = "(01)06938123450058(21)IP-2023-0419"
        assert emitted.position == "PRT:1"
        assert emitted.event.subject == asset_id_for(Identifier(scheme="udi", value=udi))
        assert emitted.event.payload.ended_at == datetime(2024, 6, 12, 5, 30, tzinfo=UTC)

    def test_orm_sample(self):
        """06: ORM^O01 with OBX-18 gives asset.used for the dialysis machine."""
        (emitted,) = run(sample("06_orm_o01_dialysis_machine.hl7")).events
        assert emitted.event.subject == asset_id_for(Identifier(scheme="his.code", value="HD-MACH-05"))
        assert emitted.event.payload.department == DeptRef(code="0501", name="血液净化中心")

    def test_omg_o19_is_translated_like_orm(self):
        """OMG^O19 naming a device in OBX-18 gives asset.used, order id from ORC-2."""
        payload = hl7(
            msh("OMG^O19^OMG_O19"),
            PID,
            "ORC|NW|ORD-9^HIS",
            "OBR|1|ORD-9^HIS||CT^CT平扫",
            "OBX|1|ST|DEV^设备||ok||||||F|||20240616090000||||CT-02",
        )
        (emitted,) = run(payload).events
        assert emitted.event.payload.order_id == "ORD-9"
        assert emitted.event.payload.department is None

    def test_repeated_obx18_names_several_devices(self):
        """Each OBX-18 repetition is a device; the second gets position `OBX:1~2`."""
        payload = hl7(msh("ORU^R01"), PID, "OBR|1|O1", "OBX|1|ST|X||v||||||F|||20240616090000||||DEV-A~DEV-B")
        assert [e.position for e in run(payload).events] == ["OBX:1", "OBX:1~2"]

    def test_result_without_device_is_skipped(self):
        """An ORU that names no device produces nothing, and says why."""
        result = run(hl7(msh("ORU^R01"), PID, "OBR|1|O1", "OBX|1|NM|GLU||5.5|mmol/L|||||F"))
        assert result.events == ()
        assert result.skipped == ("ORU^R01 names no device (no OBX-18, no equipment PRT)",)

    def test_equipment_prt_without_device_fails(self):
        """A PRT with role EQUIP but no PRT-10/PRT-16 is a Failure at PRT-10."""
        (failure,) = run(hl7(msh("ORU^R01"), PID, "PRT|1|AD||EQUIP")).failures
        assert (failure.position, failure.location.field) == ("PRT:1", "PRT-10")

    def test_unknown_point_of_care_keeps_each_use_with_a_note(self):
        """An unknown PV1-3 keeps the asset.used (department unknown) and notes PV1-3 per device."""
        payload = hl7(msh("ORU^R01"), PID, "PV1|1|I|WARD-X", "OBX|1|ST|X||v||||||F|||20240616090000||||DEV-A")
        result = run(payload)
        (emitted,) = result.events
        assert (emitted.event.type, emitted.event.payload.department) == ("asset.used", None)
        (note,) = result.notes
        assert (note.position, note.location.segment, note.location.field) == ("OBX:1#PV1-3", "PV1", "PV1-3")
        assert "'WARD-X'" in note.reason

    def test_unknown_point_of_care_fails_each_device_when_strict(self):
        """`strict: [department]`: an unknown PV1-3 fails the use, naming PV1-3 and the code."""
        payload = hl7(msh("ORU^R01"), PID, "PV1|1|I|WARD-X", "OBX|1|ST|X||v||||||F|||20240616090000||||DEV-A")
        (failure,) = run(payload, with_rules(strict=["department"])).failures
        assert (failure.location.field, failure.code) == ("PV1-3", "unknown_code")
        assert "'WARD-X'" in failure.reason


class TestEquipmentStatus:
    def test_operational_state(self):
        """07: EQU-3 OP is in_use; status_text keeps the source's words; EQU-2 is the time."""
        (emitted,) = run(sample("07_esu_u01_ventilator_in_use.hl7")).events
        event = emitted.event
        assert isinstance(event, AssetStatusChanged)
        assert event.subject == asset_id_for(Identifier(scheme="his.code", value="VENT-0032"))
        assert (event.payload.status, event.payload.status_text) == (AssetStatus.IN_USE, "Normal Operation")
        assert event.occurred_at == datetime(2024, 6, 12, 4, 9, 30, tzinfo=UTC)

    def test_emergency_stop_with_alert(self):
        """08: ES maps to under_repair; EQU-5's alert text is the reason."""
        (emitted,) = run(sample("08_esu_u01_emergency_stop.hl7")).events
        assert (emitted.event.payload.status, emitted.event.payload.reason) == (
            AssetStatus.UNDER_REPAIR,
            "High",
        )

    def test_unknown_state_is_a_failure_naming_the_code(self):
        """09: state XX is not in the map and strict_codes is on: a dead letter that names XX."""
        result = run(sample("09_esu_u01_unknown_state.hl7"))
        (failure,) = result.failures
        assert result.events == ()
        assert (failure.code, failure.location.field) == ("unknown_code", "EQU-3")
        assert "'XX'" in failure.reason

    def test_unknown_state_is_unknown_when_not_strict(self):
        """Without strict codes the status is `unknown` and the source's text is kept."""
        (emitted,) = run(sample("09_esu_u01_unknown_state.hl7"), with_rules(strict_codes=False)).events
        assert (emitted.event.payload.status, emitted.event.payload.status_text) == (
            AssetStatus.UNKNOWN,
            "维修中",
        )

    def test_missing_equipment_id_fails(self):
        """EQU-1 empty: a Failure at EQU-1."""
        (failure,) = run(hl7(msh("ESU^U01"), "EQU||20240612|OP")).failures
        assert failure.location.field == "EQU-1"


class TestItemMaster:
    def test_item_master_sample(self):
        """10: two items and three stock levels; the deactivated item is skipped."""
        result = run(sample("10_mfn_m16_item_master.hl7"))
        assert [e.position for e in result.events] == ["ITM:1", "IVT:1", "IVT:2", "ITM:2", "IVT:3"]
        assert result.skipped == ("ITM:3: MFE-1 MDC (deactivate) has no canonical event",)
        item = result.events[0].event
        assert isinstance(item, InventoryItemDefined)
        assert item.subject == item_id_for("his", "HC0301")
        p = item.payload
        assert (p.item_code, p.name, p.spec, p.unit, p.category) == (
            "HC0301",
            "冠脉球囊扩张导管",
            "BC-2.5x15",
            "支",
            "心血管介入耗材",
        )
        assert (p.high_value, p.supplier) == (True, "赛诺医疗器械有限公司")
        assert p.price is not None
        assert (p.price.amount, p.price.currency) == (Decimal("2680.00"), "CNY")
        assert result.events[3].event.payload.name == "药物洗脱支架&输送系统"
        store = result.events[1].event
        assert isinstance(store, InventoryThresholdSet)
        assert store.subject == item_id_for("his", "HC0301")
        assert store.payload.location == LocationRef(
            department=DeptRef(code="0902", name="中心库房"), location="二级库"
        )
        assert (store.payload.minimum, store.payload.maximum, store.payload.reorder_point) == (
            Decimal(10),
            Decimal(30),
            Decimal(10),
        )

    def test_ivt_without_order_point_sets_no_threshold(self):
        """An IVT with IVT-24 empty just names a stocking location: skipped with the reason."""
        payload = hl7(msh("MFN^M16"), "MFE|MAD|1|20240601|X1", "ITM|X1|纱布", "IVT|1|STORE-2")
        result = run(payload)
        assert [e.position for e in result.events] == ["ITM:1"]
        assert result.skipped == ("IVT:1: no order point (IVT-24): the IVT sets no threshold",)

    def test_ivt_without_order_amount_fails(self):
        """An order point without order amount (and no maximum field) leaves the maximum unknown."""
        payload = hl7(
            msh("MFN^M16"), "MFE|MAD|1|20240601|X1", "ITM|X1|纱布", "IVT|1|STORE-2" + "|" * 22 + "5"
        )
        (failure,) = run(payload).failures
        assert (failure.position, failure.location.field) == ("IVT:1", "IVT-25")

    def test_missing_item_name_fails(self):
        """ITM-2 empty: the item cannot be defined; the failure names ITM-2."""
        (failure,) = run(hl7(msh("MFN^M16"), "MFE|MAD|1|20240601|X1", "ITM|X1")).failures
        assert (failure.position, failure.location.field) == ("ITM:1", "ITM-2")

    def test_bad_currency_is_a_failure_not_a_crash(self):
        """An invalid currency code in ITM-13 fails the item with the schema's reason."""
        (failure,) = run(
            hl7(msh("MFN^M16"), "MFE|MAD|1|20240601|X1", "ITM|X1|纱布" + "|" * 11 + "5&yuan")
        ).failures
        assert failure.code == "invalid_event"
        assert "currency" in failure.reason


class TestWholeMessages:
    def test_unmapped_types_are_skipped_without_needing_a_secret(self):
        """ADT/SIU are skipped as unmapped; no patient token is computed, so no secret is needed."""
        for name, label in [("11_adt_a01_admission.hl7", "ADT^A01"), ("12_siu_s12_unmapped.hl7", "SIU^S12")]:
            result = run(sample(name), default_mapping())
            assert (result.events, result.failures, result.units) == ((), (), 0)
            assert result.skipped == (f"unmapped message type {label}",)

    def test_mapped_message_with_pid_needs_the_secret(self):
        """A DFT with a PID and a mapping without secret is refused with a clear error."""
        with pytest.raises(PatientSecretMissing, match="with_secret"):
            run(sample("01_dft_p03_ptca_prt_utf8.hl7"), default_mapping())

    def test_mapped_message_without_pid_needs_no_secret(self):
        """ESU carries no patient: it translates without a secret."""
        assert len(run(sample("07_esu_u01_ventilator_in_use.hl7"), default_mapping()).events) == 1

    def test_malformed_sample_raises(self):
        """13 (no MSH) raises MalformedMessage."""
        with pytest.raises(MalformedMessage, match="no MSH segment"):
            run(sample("13_malformed_no_msh.hl7"), message_id="bad")

    def test_wrapped_line_in_a_mapped_type_raises(self):
        """A mapped message whose segment structure is broken is malformed as a whole."""
        with pytest.raises(MalformedMessage, match="segment 3"):
            run(hl7(msh("DFT^P03"), PID, "broken text|x"))

    def test_batch_positions_are_prefixed_per_message(self):
        """15: two DFTs in one payload; positions m1/, m2/ keep event ids distinct."""
        result = run(sample("15_batch_fhs_two_dft.hl7"))
        assert [e.position for e in result.events] == ["m1/FT1:1", "m2/FT1:1"]
        assert len({e.event.event_id for e in result.events}) == 2

    def test_forced_channel_encoding_applies(self):
        """A mapping `encoding` decodes GBK bytes that carry no MSH-18."""
        payload = "\r".join(
            [msh("DFT^P03"), PID, "FT1|1|C1||20240616093000||CG|HC0301|||1|||^東區手術室", f"ZFT|1|G|{UDI}"]
        ).encode("gbk")
        (emitted,) = run(payload, with_rules(encoding="gbk")).events
        assert emitted.event.payload.location.department == DeptRef(code="0204", name="东区手术室")

    def test_invalid_msh7_fails_units_that_need_it(self):
        """With MSH-7 unreadable and no unit time, the failure names MSH-7."""
        payload = hl7(
            MSH.format(type="ESU^U01", id="T9").replace("20240616100000", "yesterday"), "EQU|DEV-1||OP"
        )
        (failure,) = run(payload).failures
        assert failure.location.field == "MSH-7"

    def test_failure_location_points_at_the_segment_line(self):
        """A failure's location gives segment, field and the segment's line in the message."""
        (failure,) = run(sample("09_esu_u01_unknown_state.hl7")).failures
        assert (failure.location.segment, failure.location.line, failure.location.field) == (
            "EQU",
            2,
            "EQU-3",
        )
