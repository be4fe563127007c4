# ruff: noqa: INP001, T201 - a standalone script that prints what it wrote
"""Write the synthetic HL7 v2 samples in examples/his/ (deterministic: same script, same bytes).

Everything here is invented by the hub team: hospital, patients, MRNs, devices, item codes,
UDIs (GTINs with valid check digits under a made-up company prefix) and prices. No real patient
or device data. Run from the repository root:

    .venv/bin/python examples/his/generate.py

UTF-8 samples are written with LF line ends (readable in a diff; the hub accepts LF, CR LF and
CR); the GBK and GB18030 samples with CR, as HL7 prescribes, and in those encodings, so the
bytes hold characters whose second byte is `|`, `^`, `~` or `\\` (東 96 7C, 區 85 5E, 瑋 AC 7C).
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).parent
HIS = "WINNING_HIS^2.16.840.1.113883.3.9999.1^ISO"
HOSPITAL = "XXRMYY^XX市第一人民医院"
HUB = "HUB^HUB"


def gtin14(base: str) -> str:
    """A GTIN-14 from 13 digits, with its GS1 mod-10 check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(base)))
    return base + str((10 - total % 10) % 10)


BALLOON = gtin14("0693812345001")
STENT = gtin14("0693812345002")
PACEMAKER = gtin14("0693812345003")
HIP = gtin14("0693812345004")
PUMP = gtin14("0693812345005")


def msh(message_type: str, control_id: str, version: str, when: str, charset: str = "") -> str:
    fields = ["MSH", "^~\\&", HIS, HOSPITAL, HUB, "XXRMYY", when, "", message_type, control_id, "P", version]
    if charset:
        fields += ["", "", "", "", "", charset]
    return "|".join(fields)


def segment(segment_id: str, fields: dict[int, str]) -> str:
    """A segment with `fields` at their HL7 positions and the rest empty."""
    values = [""] * max(fields)
    for n, value in fields.items():
        values[n - 1] = value
    return "|".join([segment_id, *values])


def write(name: str, segments: list[str], *, encoding: str = "utf-8", end: str = "\n") -> None:
    path = OUT / name
    path.write_bytes((end.join(segments) + end).encode(encoding))
    print(f"wrote {path.relative_to(OUT.parent.parent)} ({encoding})")


def dft_ptca() -> None:
    write(
        "01_dft_p03_ptca_prt_utf8.hl7",
        [
            msh("DFT^P03^DFT_P03", "DFT20240612001", "2.7", "20240612103500+0800", "UNICODE UTF-8"),
            "EVN|P03|20240612103500",
            "PID|1||MR20240001^^^XXRMYY^MR~110101196503121234^^^CHN^NNCHN||王小明^WANG XIAOMING||19650312|M",
            "PV1|1|I|CCU-1^12^03||||D1001^张医生",
            (
                "FT1|1|CHG-240612-0001||20240612101500|20240612103000|CG|HC0301^冠脉球囊扩张导管^LOCAL|"
                "冠脉球囊扩张导管 2.5x15mm||1|2680.00|2680.00|0206^心导管室||||||||||CHG-240612-0001||"
                "37.6601^经皮冠状动脉球囊扩张术^ICD9CM3"
            ),
            f"PRT|1|AD||EQUIP^Equipment^HL70912||||||(01){BALLOON}(17)271231(10)LOT2024A(21)SN0001^^2.51.1.1^ISO",
            (
                "FT1|2|CHG-240612-0002||20240612102000|20240612103000|CG|HC0302^药物洗脱支架^LOCAL|"
                "药物洗脱支架 3.0x18mm||1|6800.00|6800.00|0206^心导管室||||||||||CHG-240612-0002||"
                "36.0601^冠状动脉药物洗脱支架置入^ICD9CM3"
            ),
            f"PRT|2|AD||EQUIP^Equipment^HL70912||||||(01){STENT}(17)280630(10)DES24B07(21)SN7781^^2.51.1.1^ISO",
            (
                "FT1|3|CHG-240612-0003||20240612103000|20240612103000|CG|SV1001^心电监护^LOCAL|心电监护||2|"
                "12.00|6.00|0206^心导管室"
            ),
        ],
    )


def dft_pacemaker_gbk() -> None:
    # GBK with MSH-18 "GBK" (non-standard, common in Chinese HIS). The department arrives by its
    # traditional-character alias 東區手術室 (東 = 96 7C, 區 = 85 5E): a byte splitter breaks it.
    write(
        "02_dft_p03_pacemaker_gbk.hl7",
        [
            msh("DFT^P03", "DFT20240613007", "2.4", "20240613152000", "GBK"),
            "EVN|P03|20240613152000",
            "PID|1||MR20240002^^^XXRMYY^MR||李瑋^LI WEI||19580723|F",
            "PV1|1|I|OR-EAST^3^01",
            (
                "FT1|1|CHG-240613-0107||20240613143000|20240613152000|CG|HC0410^双腔心脏起搏器^LOCAL|"
                "億通雙腔起搏器 DR-200||1|38000.00|38000.00|^東區手術室|||||||||CHG-240613-0107"
            ),
            f"ZFT|1|GS1|(01){PACEMAKER}(17)290101(10)PM2406(21)PMX00042",
        ],
        encoding="gbk",
        end="\r",
    )


def dft_hip_gb18030() -> None:
    # GB18030 with MSH-18 "GB 18030-2000"; the patient's rare given name 㛃 (CJK Ext. A) is a
    # four-byte GB18030 sequence that GBK cannot hold. The UDI is a raw GS1 element string whose
    # group separator travels as the HL7 hex escape \X1D\.
    write(
        "03_dft_p03_hip_gb18030.hl7",
        [
            msh("DFT^P03", "DFT20240614003", "2.5", "20240614091000", "GB 18030-2000"),
            "EVN|P03|20240614091000",
            "PID|1||MR20240003^^^XXRMYY^MR||赵㛃^ZHAO JIE||19490101|M",
            "PV1|1|I|ORTHO-W3^5^02",
            (
                "FT1|1|CHG-240614-0031||20240614083000||CG|HC0520^人工髋关节假体^LOCAL|人工髋关节(陶瓷对陶瓷)||1|"
                "45600.00|45600.00"
            ),
            f"ZFT|1|GS1|]d201{HIP}17300101\\X1D\\10HIP2406\\X1D\\21HX-88017",
        ],
        encoding="gb18030",
        end="\r",
    )


def oru_ventilator() -> None:
    obx = [
        "OBX|{n}|NM|{code}^{name}^LOCAL||{value}|{unit}|||||F|||{when}||||VENT-0032^HIS^^L",
    ]
    rows = [
        (1, "VT", "潮气量", "450", "mL", "20240612080000"),
        (2, "RR", "呼吸频率", "16", "/min", "20240612080000"),
        (3, "PEEP", "呼气末正压", "5", "cmH2O", "20240612100000"),
        (4, "FIO2", "吸入氧浓度", "40", "%", "20240612120000"),
    ]
    segments = [
        msh("ORU^R01^ORU_R01", "ORU20240612088", "2.5.1", "20240612120500"),
        "PID|1||MR20240004^^^XXRMYY^MR||陈晓红^CHEN XIAOHONG||19720815|F",
        "PV1|1|I|RICU^8^01",
        "ORC|RE|VM-240612-0008^HIS",
        "OBR|1|VM-240612-0008^HIS||VENT-MON^呼吸机监测^LOCAL|||20240612080000",
    ]
    segments += [
        obx[0].format(n=n, code=c, name=name, value=v, unit=u, when=w) for n, c, name, v, u, w in rows
    ]
    segments.append("OBX|5|NM|SPO2^血氧饱和度^LOCAL||97|%|||||F|||20240612120000||||MON-0107^HIS^^L")
    write("04_oru_r01_ventilator_obx18.hl7", segments)


def oru_infusion_prt() -> None:
    write(
        "05_oru_r01_infusion_pump_prt.hl7",
        [
            msh("ORU^R01^ORU_R01", "ORU20240612123", "2.8", "20240612140000+0800", "UNICODE UTF-8"),
            "PID|1||MR20240005^^^XXRMYY^MR||刘建国^LIU JIANGUO||19601130|M",
            "PV1|1|I|ICU-A^2^05",
            "ORC|RE|INF-240612-0042^HIS",
            "OBR|1|INF-240612-0042^HIS||INFUSION^静脉输注^LOCAL|||20240612090000",
            (
                f"PRT|1|AD||EQUIP^Equipment^HL70912||||||(01){PUMP}(21)IP-2023-0419^^2.51.1.1^ISO|"
                "20240612090000+0800|20240612133000+0800"
            ),
            "OBX|1|NM|RATE^输注速率^LOCAL||25|mL/h|||||F|||20240612090000",
        ],
        end="\r",
    )


def orm_dialysis() -> None:
    write(
        "06_orm_o01_dialysis_machine.hl7",
        [
            msh("ORM^O01", "ORM20240615002", "2.4", "20240615073000"),
            "PID|1||MR20240006^^^XXRMYY^MR||孙丽^SUN LI||19811202|F",
            "PV1|1|O|HD-1^1^07",
            "ORC|NW|HD-240615-0011^HIS",
            "OBR|1|HD-240615-0011^HIS||HD4H^血液透析(4小时)^LOCAL|||20240615080000",
            "OBX|1|ST|MACHINE^透析机^LOCAL||已上机||||||F|||20240615080000||||HD-MACH-05^HIS^^L",
        ],
    )


def esu(name: str, control_id: str, equipment: str, state: str, alert: str = "") -> None:
    write(
        name,
        [
            msh("ESU^U01^ESU_U01", control_id, "2.5", "20240612121000"),
            f"EQU|{equipment}^HIS^^L|20240612120930|{state}|L^Local|{alert}",
        ],
    )


def mfn_items() -> None:
    write(
        "10_mfn_m16_item_master.hl7",
        [
            msh("MFN^M16^MFN_M16", "MFN20240601001", "2.6", "20240601090000"),
            "MFI|INV^Inventory Item Master File^HL70175||UPD|||NE",
            "MFE|MAD|MF-0001|20240601000000|HC0301^冠脉球囊扩张导管|CWE",
            (
                "ITM|HC0301^LOCAL|冠脉球囊扩张导管||HV^高值耗材|C03^心血管介入耗材|Y|MFR01|赛诺医疗器械有限公司|"
                "BC-2.5x15||Y||2680.00&CNY|Y"
            ),
            segment("IVT", {1: "1", 2: "STORE-2^LOCAL", 3: "二级库", 24: "10", 25: "20"}),
            segment("IVT", {1: "2", 2: "CATH-1^LOCAL", 3: "1号导管间", 24: "2", 25: "4"}),
            "PKG|1|^支|Y|1",
            "MFE|MAD|MF-0002|20240601000000|HC0302^药物洗脱支架|CWE",
            (
                "ITM|HC0302^LOCAL|药物洗脱支架\\T\\输送系统||HV^高值耗材|C03^心血管介入耗材|Y|MFR02|乐普医疗器械有限公司|"
                "DES-3.0x18||Y||6800.00&CNY|Y"
            ),
            segment("IVT", {1: "3", 2: "CATH-1^LOCAL", 3: "1号导管间", 24: "3", 25: "6"}),
            "PKG|1|^套|Y|1",
            "MFE|MDC|MF-0003|20240601000000|HC0199^停用球囊|CWE",
            "ITM|HC0199^LOCAL|停用球囊",
        ],
    )


def adt() -> None:
    write(
        "11_adt_a01_admission.hl7",
        [
            msh("ADT^A01^ADT_A01", "ADT20240612001", "2.5", "20240612070000"),
            "EVN|A01|20240612070000",
            "PID|1||MR20240001^^^XXRMYY^MR||王小明^WANG XIAOMING||19650312|M",
            "PV1|1|I|CCU-1^12^03",
        ],
    )


def siu() -> None:
    write(
        "12_siu_s12_unmapped.hl7",
        [
            msh("SIU^S12^SIU_S12", "SIU20240612001", "2.5", "20240612080000"),
            "SCH|APT-001||||||CHECKUP^复查",
            "PID|1||MR20240007^^^XXRMYY^MR||周敏^ZHOU MIN||19900101|F",
        ],
    )


def malformed() -> None:
    # Deliberately malformed: the MSH is missing, the file starts with PID.
    write(
        "13_malformed_no_msh.hl7",
        [
            "PID|1||MR20240008^^^XXRMYY^MR||吴强^WU QIANG||19770707|M",
            "FT1|1|CHG-X||20240612||CG|HC0301^冠脉球囊扩张导管|||1",
        ],
    )


def dft_unknown_department() -> None:
    write(
        "14_dft_p03_unknown_department.hl7",
        [
            msh("DFT^P03", "DFT20240616009", "2.5", "20240616100000"),
            "PID|1||MR20240009^^^XXRMYY^MR||郑华^ZHENG HUA||19850520|M",
            "FT1|1|CHG-240616-0009||20240616093000||CG|HC0301^冠脉球囊扩张导管^LOCAL|||1|||9999^未知科室",
            f"ZFT|1|GS1|(01){BALLOON}(17)271231(10)LOT2024A(21)SN0002",
        ],
    )


def batch() -> None:
    write(
        "15_batch_fhs_two_dft.hl7",
        [
            "FHS|^~\\&|WINNING_HIS|XXRMYY|HUB|XXRMYY|20240617180000||DFT-BATCH-0617.hl7",
            "BHS|^~\\&|WINNING_HIS|XXRMYY|HUB|XXRMYY|20240617180000",
            msh("DFT^P03", "DFT20240617001", "2.5", "20240617170000"),
            "PID|1||MR20240010^^^XXRMYY^MR||冯雪^FENG XUE||19930303|F",
            "FT1|1|CHG-240617-0001||20240617160000||CG|HC0301^冠脉球囊扩张导管^LOCAL|||1|||0206^心导管室",
            f"ZFT|1|GS1|(01){BALLOON}(17)271231(10)LOT2024A(21)SN0003",
            msh("DFT^P03", "DFT20240617002", "2.5", "20240617171000"),
            "PID|1||MR20240011^^^XXRMYY^MR||韩梅^HAN MEI||19880808|F",
            "FT1|1|CHG-240617-0002||20240617163000||CG|HC0302^药物洗脱支架^LOCAL|||1|||0206^心导管室",
            f"ZFT|1|GS1|(01){STENT}(17)280630(10)DES24B07(21)SN7782",
            "BTS|2",
            "FTS|1",
        ],
    )


VENT_EUI = "0012A3FFFE4B5C6D^^0012A3FFFE4B5C6D^EUI-64"  # IEEE EUI-64 in OBX-18 (EI-1 and EI-3/EI-4)
PCD_MSH = (
    "MSH|^~\\&|VENT_GW^0012A3FFFE000001^EUI-64|XXRMYY|HUB^HUB|XXRMYY|{when}||{kind}|{cid}|P|2.6|||AL|NE||"
    "UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
)


def oru_pcd01() -> None:
    """IHE PCD-01: a ventilator gateway reports observations and the device's own counters."""
    t = "20240612120000+0800"
    rows = [
        ("70001^MDC_DEV_SYS_PT_VENT_MDS^MDC", "1.0.0.0", "", "", "", "X", VENT_EUI),
        ("70002^MDC_DEV_SYS_PT_VENT_VMD^MDC", "1.1.0.0", "", "", "", "X", ""),
        ("151562^MDC_RESP_RATE^MDC", "1.1.1.1", "NM", "16", "264928^MDC_DIM_RESP_PER_MIN^MDC", "R", ""),
        ("151980^MDC_PRESS_AWAY_END_EXP_POS^MDC", "1.1.1.2", "NM", "5", "266048^MDC_DIM_CM_H2O^MDC", "R", ""),
        ("152664^MDC_VOL_AWAY_TIDAL^MDC", "1.1.1.3", "NM", "450", "263762^MDC_DIM_MILLI_L^MDC", "R", ""),
        ("0^MDC_ATTR_TIME_PD_OP_CUMUL^MDC", "1.0.0.1", "NM", "12034.5", "264352^MDC_DIM_HR^MDC", "R", ""),
        ("0^MDC_ATTR_POWER_ON_CNT^MDC", "1.0.0.2", "NM", "812", "262656^MDC_DIM_DIMLESS^MDC", "R", ""),
        ("0^MDC_ATTR_BATT_CAP_FULL_PCT^MDC", "1.0.0.3", "NM", "87.5", "262688^MDC_DIM_PERCENT^MDC", "R", ""),
        ("0^MDC_ATTR_BATT_CYCLE_CNT^MDC", "1.0.0.4", "NM", "214", "262656^MDC_DIM_DIMLESS^MDC", "R", ""),
        ("0^MDC_ATTR_DEV_ERR_CODE^MDC", "1.0.0.5", "CWE", "E-217^流量传感器漂移^VENDOR", "", "R", ""),
    ]
    segments = [
        PCD_MSH.format(when="20240612120005+0800", kind="ORU^R01^ORU_R01", cid="PCD20240612001"),
        "PID|1||MR20240004^^^XXRMYY^MR||陈晓红^CHEN XIAOHONG||19720815|F",
        "PV1|1|I|ICU-A^^01",
        "OBR|1|PCD-0612-0001^VENT_GW|PCD-0612-0001^VENT_GW|182777000^monitoring of patient^SNOMED-CT|||" + t,
    ]
    for n, (code, sub, kind, value, unit, status, device) in enumerate(rows, 1):
        when = t if kind else ""
        segments.append(
            segment(
                "OBX",
                {1: str(n), 2: kind, 3: code, 4: sub, 5: value, 6: unit, 11: status, 14: when, 18: device}
                if device
                else {1: str(n), 2: kind, 3: code, 4: sub, 5: value, 6: unit, 11: status, 14: when},
            )
        )
    write("16_oru_r01_pcd01_ventilator_eui64.hl7", segments)


def oru_pcd04() -> None:
    """IHE PCD-04: an alarm from the same ventilator (priority high in OBX-8)."""
    t = "20240612121500+0800"
    write(
        "17_oru_r40_pcd04_alarm.hl7",
        [
            PCD_MSH.format(when="20240612121502+0800", kind="ORU^R40^ORU_R40", cid="PCD20240612002"),
            "PV1|1|I|ICU-A^^01",
            "OBR|1|ALM-0612-0001^VENT_GW|ALM-0612-0001^VENT_GW|196616^MDC_EVT_ALARM^MDC|||" + t,
            segment(
                "OBX", {1: "1", 3: "70001^MDC_DEV_SYS_PT_VENT_MDS^MDC", 4: "1.0.0.0", 11: "X", 18: VENT_EUI}
            ),
            segment(
                "OBX",
                {
                    1: "2",
                    2: "ST",
                    3: "196670^MDC_EVT_PRESS_AWAY_HI^MDC",
                    4: "1.1.1.1.1",
                    5: "气道压力高",
                    8: "PH",
                    11: "F",
                    14: t,
                },
            ),
        ],
    )


def main() -> None:
    dft_ptca()
    dft_pacemaker_gbk()
    dft_hip_gb18030()
    oru_ventilator()
    oru_infusion_prt()
    orm_dialysis()
    esu("07_esu_u01_ventilator_in_use.hl7", "ESU20240612001", "VENT-0032", "OP^Normal Operation^HL70365")
    esu("08_esu_u01_emergency_stop.hl7", "ESU20240612002", "HD-MACH-05", "ES^E-stopped^HL70365", "H^High")
    esu("09_esu_u01_unknown_state.hl7", "ESU20240612003", "MON-0107", "XX^维修中^LOCAL")
    mfn_items()
    adt()
    siu()
    malformed()
    dft_unknown_department()
    batch()
    oru_pcd01()
    oru_pcd04()
    esu(
        "18_esu_u01_warning_alert.hl7",
        "ESU20240612004",
        "VENT-0032",
        "OP^Normal Operation^HL70365",
        "W^电池电量低",
    )


if __name__ == "__main__":
    main()
