"""Late readings re-judge what was already judged.

A reading that lands before a series' watermark (a gateway's buffered backlog, a corrected
export) changes hours detection has concluded on. `rewind` records where: from the first hour
the refold touched, widened to the start of any anomaly of that scope whose window reaches it,
so a window is judged whole again. The next tick judges from there (projections.energy.alarms):
an open anomaly inside the re-judged hours that is no longer seen is cleared saying so; one
newly seen is detected; one seen again as it was changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from projections.energy.tables import anomalies, evaluated, rejudge
from projections.runtime.upsert import upsert

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

VALVES = ("heating_valve_pct", "cooling_valve_pct")
# Where judging starts, and the hours judged again ([from, to)) when late readings came.
Start = tuple[datetime | None, tuple[datetime, datetime] | None]


def rewind(conn: Connection, scope: str, hour: datetime) -> None:
    """Hours of `scope` from `hour` on changed: judge them again if they were judged."""
    through = conn.execute(select(evaluated.c["through"]).where(evaluated.c.scope == scope)).scalar()
    if through is None or through <= hour:
        return  # not judged yet: the next tick judges them anyway
    a = anomalies.c
    key = a.zone if scope.startswith("zone:") else a.series
    earliest = conn.execute(
        select(func.min(a.window_start)).where(
            key == scope.removeprefix("zone:"), a.window_end > hour, a.window_start < through
        )
    ).scalar()
    since = hour if earliest is None else min(hour, earliest)
    known = conn.execute(select(rejudge.c.since).where(rejudge.c.scope == scope)).scalar()
    if known is not None:
        since = min(since, known)
    upsert(conn, rejudge, [{"scope": scope, "since": since}], key=("scope",), update=True)


def rewind_series(conn: Connection, name: str, quantity: str, zone: str | None, hour: datetime) -> None:
    """A series' late readings: its own judgement, and its zone's when it is a valve."""
    rewind(conn, name, hour)
    if quantity in VALVES and zone:
        rewind(conn, f"zone:{zone}", hour)


def pending(conn: Connection) -> dict[str, datetime]:
    return dict(conn.execute(select(rejudge.c.scope, rejudge.c.since)).all())


def settled(conn: Connection, scope: str) -> None:
    conn.execute(delete(rejudge).where(rejudge.c.scope == scope))


def judge_from(through: datetime | None, again: datetime | None) -> Start:
    """Judging starts at the watermark, or earlier where late readings changed judged hours."""
    if again is None or through is None or again >= through:
        return through, None
    return again, (again, through)


def inside(row: Mapping[str, Any], hours: tuple[datetime, datetime]) -> bool:
    """The anomaly's whole window was judged again."""
    return bool(hours[0] <= row["window_start"] and row["window_end"] <= hours[1])


def known(conn: Connection, anomaly_id: str) -> bool:
    a = anomalies.c
    return conn.execute(select(a.anomaly_id).where(a.anomaly_id == anomaly_id)).first() is not None
