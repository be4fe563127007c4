"""/energy through the real wiring: an export ingested, consumption by level, anomalies, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from hub.auth.roles import Role
from hub.pipeline import drain
from tests.e2e.conftest import Wired

ADM = Role.ADMIN
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bms" / "bms-meter-readings.csv"
# A meter no table lists, named by a formula: its building column still places it.
FORMULA = '=HYPERLINK("http://x","y")'
EXTRA = (
    "表计编号,楼栋,区域,计量类型,抄表时间,读数\n"
    + "\n".join(
        f'"{FORMULA.replace(chr(34), chr(34) * 2)}",B,,电,2024-06-12 0{h}:00,{100 + h}' for h in range(5)
    )
).encode("utf-8")


async def _loaded(w: Wired, tmp_path: Path) -> None:
    extra = tmp_path / "formula-meter.csv"
    extra.write_bytes(EXTRA)
    await w.ingest("bms", EXAMPLE, extra)


async def test_consumption_by_building_with_intensity(wired: Wired, tmp_path: Path) -> None:
    """Building A's electricity on 2024-06-12 by the hour, with its area from the mapping (32,000 m2)."""
    await _loaded(wired, tmp_path)
    params = {"level": "building", "id": "A", "from": "2024-06-12", "to": "2024-06-12", "grain": "day"}
    body = (await wired.http.get("/energy/consumption", params=params, headers=wired.auth(ADM))).json()
    rows = {i["quantity"]: i for i in body["items"]}
    assert rows["electricity_kwh"]["value"] == 24.5
    assert rows["electricity_kwh"]["area_m2"] == 32000
    assert round(rows["water_m3"]["value"], 3) == 0.35
    assert (body["from"], body["to"], body["level"]) == ("2024-06-12", "2024-06-12", "building")


async def test_a_rollover_and_a_replacement_are_not_negative(wired: Wired, tmp_path: Path) -> None:
    """ICU: the electricity register wrapped, the water meter was replaced: both count forward."""
    await _loaded(wired, tmp_path)
    params = {"level": "zone", "id": "B-3F-ICU", "from": "2024-06-12", "to": "2024-06-12"}
    body = (await wired.http.get("/energy/consumption", params=params, headers=wired.auth(ADM))).json()
    rows = {i["quantity"]: i["value"] for i in body["items"]}
    assert round(rows["electricity_kwh"], 2) == 15.19
    assert rows["water_m3"] == 0.04


async def test_a_department_key_sees_only_its_zones(wired: Wired, tmp_path: Path) -> None:
    """The ER's key asking for building B (the ICU's) gets nothing; for its own department, its meters."""
    await _loaded(wired, tmp_path)
    er = wired.auth(ADM, "急诊科")
    other = {"level": "building", "id": "B", "from": "2024-06-12", "to": "2024-06-12"}
    own = {"level": "department", "id": "急诊科", "from": "2024-06-12", "to": "2024-06-12"}
    assert (await wired.http.get("/energy/consumption", params=other, headers=er)).json()["items"] == []
    mine = (await wired.http.get("/energy/consumption", params=own, headers=er)).json()["items"]
    assert {i["quantity"] for i in mine} == {"electricity_kwh", "water_m3"}


async def test_anomalies_list_with_evidence_and_escape_formulas_in_csv(wired: Wired, tmp_path: Path) -> None:
    """A silent meter named by a formula: listed as a gap; in CSV its name cannot run as a formula."""
    await _loaded(wired, tmp_path)
    energy = next(p for p in wired.hub.api.projections if p.name == "energy")
    with wired.hub.engine.begin() as conn:
        energy.tick(conn, datetime(2024, 6, 12, 0, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    params = {"from": "2024-06-11", "to": "2024-06-12"}
    body = (await wired.http.get("/energy/anomalies", params=params, headers=wired.auth(ADM))).json()
    gaps = [i for i in body["items"] if i["meter_id"] == FORMULA]
    assert [g["kind"] for g in gaps] == ["gap"]
    assert "no reading since" in gaps[0]["reason"]
    answer = await wired.http.get(
        "/energy/anomalies", params=params, headers={**wired.auth(ADM), "Accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert "'" + FORMULA in [r["meter_id"] for r in rows]
    assert FORMULA not in [r["meter_id"] for r in rows]


async def test_bad_parameters_are_refused_with_a_reason(wired: Wired) -> None:
    """`to` before `from`, or a level without an id: 422 saying so."""
    headers = wired.auth(ADM)
    backwards = {"from": "2024-06-12", "to": "2024-06-01"}
    no_id = {"level": "zone", "from": "2024-06-12", "to": "2024-06-12"}
    assert (await wired.http.get("/energy/consumption", params=backwards, headers=headers)).status_code == 422
    answer = await wired.http.get("/energy/consumption", params=no_id, headers=headers)
    assert (answer.status_code, "needs an `id`" in answer.text) == (422, True)


async def test_a_gateway_push_lands_like_an_export(wired: Wired) -> None:
    """POST /ingest/bms with the gateway JSON: stored (202), its readings queryable, the bad entry a dead letter."""
    push = (EXAMPLE.parent / "gateway-push.json").read_bytes()
    answer = await wired.http.post(
        "/ingest/bms", params={"filename": "gateway-push.json"}, content=push, headers=wired.auth(ADM)
    )
    assert answer.status_code == 202
    await drain(wired.hub)
    params = {"level": "meter", "id": "B-3F-W01", "from": "2024-06-12", "to": "2024-06-12"}
    body = (await wired.http.get("/energy/consumption", params=params, headers=wired.auth(ADM))).json()
    assert [(i["quantity"], i["value"]) for i in body["items"]] == [("water_m3", 0.21)]
    letters = (await wired.http.get("/dlq", params={"system": "bms"}, headers=wired.auth(ADM))).json()[
        "items"
    ]
    assert [d["location"]["column"] for d in letters] == ["at"]


async def test_zones_map_to_departments_and_registry_places(wired: Wired, tmp_path: Path) -> None:
    """GET /energy/zones: each zone with its department, the registry's place, its FHIR Location and meters."""
    from hub.api.fhir.places import place_id

    await _loaded(wired, tmp_path)
    body = (await wired.http.get("/energy/zones", headers=wired.auth(ADM))).json()
    icu = next(z for z in body["items"] if z["zone"] == "B-3F-ICU")
    assert (icu["building"], icu["building_name"], icu["floor"]) == ("B", "住院楼", "3F")
    assert (icu["dept_code"], icu["dept_name"], icu["place"]) == ("0301", "重症医学科", "ICU 病区")
    assert icu["location"] == f"Location/{place_id('0301', 'ICU 病区')}"
    assert (icu["area_m2"], icu["beds"]) == (1500, 30)
    assert {m["meter_id"] for m in icu["meters"]} == {"B-3F-E01", "B-3F-W01", "B-3F-T", "B-3F-HV", "B-3F-CV"}
    er = (await wired.http.get("/energy/zones", headers=wired.auth(ADM, "急诊科"))).json()
    assert [z["zone"] for z in er["items"]] == ["A-1F-ER"]


async def test_zones_are_paged_with_limit_and_offset(wired: Wired, tmp_path: Path) -> None:
    """GET /energy/zones?limit=&offset=: pages of the same order, together every zone once."""
    await _loaded(wired, tmp_path)
    whole = (await wired.http.get("/energy/zones", headers=wired.auth(ADM))).json()
    assert whole["total"] == len(whole["items"]) > 2
    paged = []
    for offset in range(0, whole["total"], 2):
        params = {"limit": 2, "offset": offset}
        page = (await wired.http.get("/energy/zones", params=params, headers=wired.auth(ADM))).json()
        assert (page["total"], page["limit"], page["offset"], len(page["items"]) <= 2) == (
            whole["total"], 2, offset, True
        )  # fmt: skip
        paged += page["items"]
    assert paged == whole["items"]
    bad = await wired.http.get("/energy/zones", params={"limit": 0}, headers=wired.auth(ADM))
    assert bad.status_code == 422


async def test_breakdown_drills_from_campus_to_meters(wired: Wired, tmp_path: Path) -> None:
    """Campus -> buildings -> floors -> zones -> meters: each level's children sum to it."""
    await _loaded(wired, tmp_path)
    day = {"from": "2024-06-12", "to": "2024-06-12", "quantity": "electricity_kwh"}

    async def children(level: str, ident: str | None = None) -> dict[str | None, float]:
        params = {**day, "level": level, **({"id": ident} if ident else {})}
        body = (await wired.http.get("/energy/breakdown", params=params, headers=wired.auth(ADM))).json()
        return {i["id"]: i["value"] for i in body["items"]}

    buildings = await children("campus")
    assert buildings["A"] == 24.5
    floors = await children("building", "B")
    # The formula-named meter has a building and no floor: `B/`, which drills down like a floor.
    assert set(floors) == {"B/3F", "B/"}
    assert await children("floor", "B/") == {None: floors["B/"]}
    zones = await children("floor", "B/3F")
    assert round(zones["B-3F-ICU"], 2) == 15.19
    assert await children("zone", "B-3F-ICU") == {"B-3F-E01": zones["B-3F-ICU"]}
    assert round(sum(floors.values()), 6) == round(buildings["B"], 6)


async def test_intensity_per_bed_day_from_census_or_beds(wired: Wired, tmp_path: Path) -> None:
    """The ICU's June census (852 bed-days) gives its per-bed-day; a day uses the census / 30 days."""
    await _loaded(wired, tmp_path)
    base = {"level": "department", "id": "0301", "quantity": "electricity_kwh"}
    month = {**base, "from": "2024-06-01", "to": "2024-06-30", "grain": "month"}
    row = (await wired.http.get("/energy/consumption", params=month, headers=wired.auth(ADM))).json()[
        "items"
    ][0]
    assert (row["bed_days"], row["bed_days_basis"]) == (852, "census")
    assert row["per_bed_day"] == round(row["value"] / 852, 6)
    day = {**base, "from": "2024-06-12", "to": "2024-06-12", "grain": "day"}
    row = (await wired.http.get("/energy/consumption", params=day, headers=wired.auth(ADM))).json()["items"][
        0
    ]
    assert row["bed_days"] == 28.4
    ward = {"level": "zone", "id": "B-5F-WARD", "from": "2024-06-01", "to": "2024-06-30", "grain": "month"}
    rows = (await wired.http.get("/energy/consumption", params=ward, headers=wired.auth(ADM))).json()["items"]
    assert [(r["bed_days"], r["bed_days_basis"]) for r in rows] in ([], [(46 * 30, "beds")])
