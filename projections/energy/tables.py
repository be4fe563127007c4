"""Tables of the `energy` read model (all prefixed `energy_`).

A series is one meter's readings of one quantity (`MTR-<meter>/<quantity>`, the event subject).
- readings: every reading, with the consumption of its interval (start, at] once its predecessor
  is known (a replacement or a rollover is named in `note`, never a negative number);
- hourly / daily / monthly: consumption (or, for instantaneous quantities, the sum and count of samples)
  per series and local hour / day / month, with the place, so any level aggregates without a join;
- series: the latest place and reading of each series (meters, gaps);
- anomalies: what detection concluded, with its evidence; evaluated: detection's watermark;
  rejudge: judged hours that late readings changed, to be judged again at the next tick.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

from projections.runtime.sqltypes import UtcDateTime

NAME = "energy"
METADATA = MetaData()


def _place() -> list[Column[str]]:
    return [
        Column("building", String(100), nullable=False),
        Column("floor", String(100)),
        Column("zone", String(100)),
        Column("dept_code", String(100)),
        Column("dept_name", String(200)),
    ]


readings = Table(
    f"{NAME}_readings",
    METADATA,
    Column("series", String(200), primary_key=True),
    Column("at", UtcDateTime, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("value", Float, nullable=False),
    Column("register_max", Float),
    Column("flags", String(100), nullable=False, default=""),
    Column("start", UtcDateTime),  # the previous reading's time: the interval is (start, at]
    Column("consumption", Float),
    Column("note", String(20)),  # replaced | rollover | backwards
    Column("place_key", String(32), nullable=False),
    # Clustered on (series, at) on SQLite: one b-tree to write per reading instead of a table and
    # its key index, and a series' readings in time order are one range read.
    sqlite_with_rowid=False,
)

places = Table(
    f"{NAME}_places",
    METADATA,
    Column("place_key", String(32), primary_key=True),  # digest of the place's parts
    *_place(),
    Column("place", String(200)),
)

series = Table(
    f"{NAME}_series",
    METADATA,
    Column("series", String(200), primary_key=True),
    Column("meter_id", String(100), nullable=False),
    Column("quantity", String(40), nullable=False),
    Column("unit", String(10), nullable=False),
    Column("place_key", String(32), nullable=False),
    *_place(),
    Column("last_at", UtcDateTime, nullable=False),
)
Index(f"{NAME}_series_zone", series.c.zone)

hourly = Table(
    f"{NAME}_hourly",
    METADATA,
    Column("series", String(200), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("meter_id", String(100), nullable=False),
    Column("quantity", String(40), nullable=False),
    *_place(),
    Column("day", String(10), nullable=False),  # local (site) date
    Column("total", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("notes", String(40), nullable=False, default=""),
    sqlite_with_rowid=False,  # clustered on (series, hour), as readings
)
Index(  # covering, as daily's
    f"{NAME}_hourly_building_cover",
    hourly.c.building,
    hourly.c.hour,
    hourly.c.quantity,
    hourly.c.total,
    hourly.c.samples,
)
Index(f"{NAME}_hourly_zone", hourly.c.zone, hourly.c.hour)
Index(f"{NAME}_hourly_meter", hourly.c.meter_id, hourly.c.hour)

daily = Table(
    f"{NAME}_daily",
    METADATA,
    Column("series", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("month", String(7), nullable=False),
    Column("meter_id", String(100), nullable=False),
    Column("quantity", String(40), nullable=False),
    *_place(),
    Column("total", Float, nullable=False),
    Column("samples", Integer, nullable=False),
)
# Covering, in the order the queries group by: a building's (or a floor's) year by day is read
# from the index alone, days in order, with no row lookups and no sort.
Index(
    f"{NAME}_daily_building_cover",
    daily.c.building,
    daily.c.day,
    daily.c.quantity,
    daily.c.total,
    daily.c.samples,
)
Index(
    f"{NAME}_daily_floor_cover",
    daily.c.building,
    daily.c.floor,
    daily.c.day,
    daily.c.quantity,
    daily.c.total,
    daily.c.samples,
)
Index(f"{NAME}_daily_zone", daily.c.zone, daily.c.day)
Index(f"{NAME}_daily_dept", daily.c.dept_code, daily.c.day)
Index(f"{NAME}_daily_meter", daily.c.meter_id, daily.c.day)

monthly = Table(
    f"{NAME}_monthly",
    METADATA,
    Column("series", String(200), primary_key=True),
    Column("month", String(7), primary_key=True),  # local (site) month
    Column("meter_id", String(100), nullable=False),
    Column("quantity", String(40), nullable=False),
    *_place(),
    Column("total", Float, nullable=False),
    Column("samples", Integer, nullable=False),
)
# The campus by month: every row, grouped by month, read in month order from this index alone.
Index(f"{NAME}_monthly_cover", monthly.c.month, monthly.c.quantity, monthly.c.total, monthly.c.samples)
Index(f"{NAME}_monthly_building", monthly.c.building, monthly.c.month)
Index(f"{NAME}_monthly_zone", monthly.c.zone, monthly.c.month)
Index(f"{NAME}_monthly_dept", monthly.c.dept_code, monthly.c.month)
Index(f"{NAME}_monthly_dept_name", monthly.c.dept_name, monthly.c.month)  # code OR name: both indexed
Index(f"{NAME}_monthly_meter", monthly.c.meter_id, monthly.c.month)

anomalies = Table(
    f"{NAME}_anomalies",
    METADATA,
    Column("anomaly_id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("series", String(200)),
    Column("meter_id", String(100)),
    Column("zone", String(100)),
    Column("building", String(100)),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("baseline", Float),
    Column("observed", Float),
    Column("unit", String(10)),
    Column("reason", Text, nullable=False),
    Column("cleared_at", UtcDateTime),
)
Index(f"{NAME}_anomalies_window", anomalies.c.window_start)

evaluated = Table(
    f"{NAME}_evaluated",
    METADATA,
    Column("scope", String(200), primary_key=True),  # a series, or `zone:<id>`
    Column("through", UtcDateTime, nullable=False),  # hours before this are judged
)

rejudge = Table(
    f"{NAME}_rejudge",
    METADATA,
    Column("scope", String(200), primary_key=True),  # a series, or `zone:<id>`
    Column("since", UtcDateTime, nullable=False),  # late readings changed judged hours from here
)
