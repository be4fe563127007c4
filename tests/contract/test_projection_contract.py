"""One contract for every read model: whatever `hub.bootstrap.make_projections()` returns is checked.

The events are real: the bundled sample exports of every source system (examples/), ingested,
translated and projected by a real hub once per module; the log it leaves (canonical, derived and
audit topics) is the stream every case replays. Each case runs on SQLite and on PostgreSQL.

(a) rebuild from the log equals the live tables (replay.compare: canonical order, by hash), live
    having been fed by the runner in small batches, with a poison record on the log;
(b) re-applying records already applied (same offsets), or the same events again at new offsets
    (same event ids, as after a translator crash), changes nothing;
(c) permutation convergence: the partitions interleaved differently (each partition's own order
    kept, as any consumer sees them), in other batch sizes, end in the same tables; and, stronger,
    the subjects interleaved differently (each subject's own order kept: the same events on a log
    partitioned otherwise, e.g. the embedded bus's 6 partitions against a Kafka topic's 12) end
    in the same read model;
(d) a poison record (undecodable payload) is recorded in `projection_poison` and everything else
    applies as if it were not there.

A projection may opt out of a case only by saying why: a `contract_exemptions` attribute mapping
the case name to a reason. An exemption without a reason, or naming no case, fails the suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url

from hub.bootstrap import build_hub, make_projections
from hub.bus.embedded import EmbeddedBus
from hub.cli.operate import REPO, sample_files
from hub.pipeline import ingest_path
from hub.ports import BusRecord, OutRecord
from hub.settings import Settings
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import apply_batch, ensure_tables, projection_poison
from projections.runtime.upsert import upsert
from replay.compare import IGNORED_COLUMNS, _encode, _rows, compare, compared_tables
from replay.rebuild import check_projection
from replay.scratch import open_scratch
from topics.catalogue import CATALOGUE

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from sqlalchemy import Engine

    from projections.runtime.base import Projection
    from schemas.catalogue import Event

CASES = ("rebuild", "idempotent", "permutation", "subject_permutation", "poison")
PROJECTIONS = make_projections()
NOW = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)  # after the samples' business times: dues and SLAs conclude
SAMPLE_SHARE = 4
LIVE_BATCH = 97  # small, and prime: live batches split the log where a rebuild's never do
POISON_VALUES = (b"\xff\xfenot json", b'{"event_id": "x", "type": "asset.nonsense"}', b"[1, 2]")


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass(frozen=True)
class SampleLog:
    """What a hub left on its log after ingesting every bundled sample export."""

    records: tuple[BusRecord, ...]

    def sampled(self, share: int) -> SampleLog:
        """About 1/`share` of the subjects with their whole history, plus, for every event type, a
        subject that has one: each subject's story stays complete and every kind of event is seen."""

        def picked(key: str | None) -> bool:
            return int(hashlib.sha256((key or "").encode()).hexdigest(), 16) % share == 0

        keep = {(r.topic, r.key) for r in self.records if picked(r.key)}
        covered = {(r.topic, r.header("event_type")) for r in self.records if (r.topic, r.key) in keep}
        for r in self.records:
            if (r.topic, r.header("event_type")) not in covered:
                keep.add((r.topic, r.key))
                covered.add((r.topic, r.header("event_type")))
        return SampleLog(tuple(r for r in self.records if (r.topic, r.key) in keep))

    def of(self, projection: Projection) -> list[BusRecord]:
        """The records on `projection`'s topics, in offset order per partition."""
        topics = set(projection.topics)
        return sorted(
            (r for r in self.records if r.topic in topics), key=lambda r: (r.topic, r.partition, r.offset)
        )


async def _ingest_samples(data_dir: Path) -> SampleLog:
    async with build_hub(Settings(data_dir=data_dir)) as hub:
        for system in hub.workers:
            for path in sample_files(REPO / "examples", system):
                await ingest_path(hub, system, path)
        await hub.relay.drain()
        for worker in hub.workers.values():
            await worker.run_until_idle()
        # The projections put derived events on the log. One that reads derived topics only
        # consumes them: it adds nothing to the log and is left out (it is the slowest).
        producing = [p for p in hub.projections if not any(t.startswith("derived.") for t in p.topics)]
        runner = ProjectionRunner(producing, hub.bus, hub.engine, prefix=hub.settings.topic_prefix)
        try:
            await runner.run_until_idle()
        finally:
            await runner.close()
        wanted = sorted({t for p in PROJECTIONS for t in p.topics})
        consumer = await hub.bus.consumer(wanted)
        records: list[BusRecord] = []
        for _ in range(1_000):  # bounded: a few thousand records, 5,000 a poll
            batch = await consumer.poll(max_records=5_000, timeout_s=0.2)
            if not batch:
                break
            records.extend(batch)
        await consumer.close()
    return SampleLog(tuple(records))


@pytest.fixture(scope="module")
def sample_log(tmp_path_factory: pytest.TempPathFactory) -> SampleLog:
    """The log of the bundled samples, produced once per module by a real hub (about 3 s)."""
    full = asyncio.run(_ingest_samples(tmp_path_factory.mktemp("samples")))
    assert len(full.records) > 1_000, "the bundled samples should give a realistic stream"
    # Every case replays the log several times over two databases: a quarter of it keeps the
    # suite fast and still holds every event type the samples produce.
    return full.sampled(SAMPLE_SHARE)


@pytest.fixture(params=PROJECTIONS, ids=[p.name for p in PROJECTIONS])
def projection(request: pytest.FixtureRequest) -> Projection:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pg_module_url(pg_server_url: str) -> Iterator[str]:
    """One PostgreSQL database for the module; each test gets a schema of its own in it (below).

    A database per test (the suite's `pg_url`) costs a CREATE and a DROP DATABASE each, more than
    most cases here take to run.
    """
    name = f"hubcontract_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The live read-model database: a SQLite file, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        e = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        yield e
        e.dispose()
        return
    url = request.getfixturevalue("pg_module_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    e = make_engine(url, connect_args={"connect_timeout": 5, "options": f"-c search_path={schema}"})
    with e.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield e
    with e.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    e.dispose()


@contextmanager
def contract_case(projection: Projection, case: str) -> Iterator[None]:
    """Run one case. For a projection exempt from it (with its reason), the case must still fail:
    it is reported as an expected failure, and an exemption that is no longer needed fails."""
    reason = _exemptions(projection).get(case)
    if reason is None:
        yield
        return
    try:
        yield
    except AssertionError:
        pytest.xfail(f"{projection.name} is exempt from {case}: {reason}")
    pytest.fail(f"{projection.name} is exempt from {case} ({reason}) yet meets it: drop the exemption")


def _exemptions(projection: Projection) -> dict[str, str]:
    return dict(getattr(projection, "contract_exemptions", {}))


def _digests(engine: Engine, projection: Projection) -> dict[str, tuple[str, int]]:
    """Digest and row count of every table replay.compare compares, in its canonical form.

    One side of `replay.compare.compare` (its row reader and encoding), to check one database
    against itself before and after, without reading everything twice.
    """
    out: dict[str, tuple[str, int]] = {}
    with engine.connect() as conn:
        for table in compared_tables(projection):
            ignored = IGNORED_COLUMNS.get(table.name, frozenset())
            columns = [c.name for c in table.columns if c.name not in ignored]
            keys = [c.name for c in table.primary_key.columns] or columns
            digest, rows = hashlib.sha256(), 0
            for row in _rows(conn, table, columns, keys, projection.name):
                digest.update(_encode(row))
                rows += 1
            out[table.name] = (digest.hexdigest(), rows)
    return out


def _own(projection: Projection, digests: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {name: d for name, d in digests.items() if name in projection.metadata.tables}


def _assert_same(left: Engine, right: Engine, projection: Projection) -> None:
    with left.connect() as a, right.connect() as b:
        comparison = compare(a, b, projection)
    assert comparison.difference is None, comparison.difference.describe()
    assert comparison.equal


def _apply(engine: Engine, projection: Projection, records: Sequence[BusRecord], batch: int) -> int:
    applied = 0
    for start in range(0, len(records), batch):
        applied += apply_batch(engine, projection, records[start : start + batch]).applied
    return applied


def _interleave(records: Sequence[BusRecord], rng: random.Random) -> list[BusRecord]:
    """The records with partitions interleaved at random, each partition's own order kept."""
    queues: dict[tuple[str, int], list[BusRecord]] = defaultdict(list)
    for r in records:
        queues[r.topic, r.partition].append(r)
    heads = dict.fromkeys(queues, 0)
    weights = {tp: rng.random() + 0.05 for tp in queues}  # some partitions run ahead, some lag
    out: list[BusRecord] = []
    while heads:
        tps = sorted(heads)
        tp = rng.choices(tps, weights=[weights[t] for t in tps])[0]
        run = rng.randint(1, 40)
        queue, at = queues[tp], heads[tp]
        out.extend(queue[at : at + run])
        if at + run >= len(queue):
            del heads[tp]
        else:
            heads[tp] = at + run
    return out


def _interleave_subjects(records: Sequence[BusRecord], rng: random.Random) -> list[BusRecord]:
    """The records with subjects interleaved at random, each subject's own order kept, each
    partition's offsets renumbered in the new order (as a log partitioned otherwise would have)."""
    queues: dict[tuple[str, str | None], list[BusRecord]] = defaultdict(list)
    for r in records:
        queues[r.topic, r.key].append(r)
    heads = dict.fromkeys(queues, 0)
    out: list[BusRecord] = []
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    while heads:
        subject = rng.choice(sorted(heads, key=str))
        queue, at = queues[subject], heads[subject]
        run = queue[at : at + rng.randint(1, 5)]
        for r in run:
            out.append(_moved(r, offsets[r.topic, r.partition]))
            offsets[r.topic, r.partition] += 1
        if at + len(run) >= len(queue):
            del heads[subject]
        else:
            heads[subject] = at + len(run)
    return out


def _with_poison(records: Sequence[BusRecord]) -> tuple[list[BusRecord], list[BusRecord], list[BusRecord]]:
    """(clean, poisoned, poison): one poison record in the middle of each partition.

    Both streams put every real record at the same offset (the clean one has a gap where the
    poison sits), so the projection's tables, offsets included, can be compared directly.
    """
    by_tp: dict[tuple[str, int], list[BusRecord]] = defaultdict(list)
    for r in records:
        by_tp[r.topic, r.partition].append(r)
    clean: list[BusRecord] = []
    poisoned: list[BusRecord] = []
    poison: list[BusRecord] = []
    for i, ((topic, partition), rs) in enumerate(sorted(by_tp.items())):
        middle = len(rs) // 2
        at = rs[middle].offset if rs else 0
        bad = BusRecord(topic, partition, at, "poison", POISON_VALUES[i % len(POISON_VALUES)], (), 0)
        shifted = [r if r.offset < at else _moved(r, r.offset + 1) for r in rs]
        clean.extend(shifted)
        poisoned.extend([*shifted[:middle], bad, *shifted[middle:]])
        poison.append(bad)
    return clean, poisoned, poison


def _moved(record: BusRecord, offset: int) -> BusRecord:
    return BusRecord(
        topic=record.topic,
        partition=record.partition,
        offset=offset,
        key=record.key,
        value=record.value,
        headers=record.headers,
        timestamp_ms=record.timestamp_ms,
    )


def _nonempty(digests: dict[str, tuple[str, int]]) -> int:
    return sum(rows for _, rows in digests.values())


# -- the cases -------------------------------------------------------------------------------------


def test_every_projection_is_covered_and_exemptions_give_a_reason() -> None:
    """The suite runs over make_projections(); an opt-out must name a case and say why."""
    assert PROJECTIONS, "make_projections() returned nothing"
    names = [p.name for p in PROJECTIONS]
    assert len(names) == len(set(names)), f"two projections share a name: {names}"
    for p in PROJECTIONS:
        for case, reason in _exemptions(p).items():
            assert case in CASES, f"{p.name} opts out of unknown case {case!r}; cases: {CASES}"
            assert isinstance(reason, str), f"{p.name}: the reason for skipping {case} must be text"
            assert reason.strip(), f"{p.name} opts out of {case} without a stated reason"


def test_the_sample_log_feeds_every_projection(sample_log: SampleLog) -> None:
    """A projection no sample event reaches would pass every case vacuously."""
    for p in PROJECTIONS:
        assert sample_log.of(p), f"no bundled sample produces an event on {p.topics} ({p.name})"


@pytest.mark.wire_unchecked  # a poison record on the log, on purpose
async def test_rebuild_equals_live(
    projection: Projection, sample_log: SampleLog, engine: Engine, tmp_path: Path
) -> None:
    """(a) The runner feeds live in small batches; a rebuild from the log compares equal, by hash."""
    with contract_case(projection, "rebuild"):
        records = sample_log.of(projection)
        bus = EmbeddedBus(tmp_path / "bus.sqlite3")
        await bus.start()
        try:
            await bus.ensure_topics(CATALOGUE)
            by_topic: dict[str, list[OutRecord]] = defaultdict(list)
            for r in records:
                by_topic[r.topic].append(OutRecord(r.key, r.value, r.headers, r.timestamp_ms))
            for topic, out in by_topic.items():
                middle = len(out) // 2  # a poison record on the log too: both sides must skip it alike
                await bus.publish(
                    topic, [*out[:middle], OutRecord("poison", POISON_VALUES[0]), *out[middle:]]
                )
            runner = ProjectionRunner(projection, bus, engine, batch_size=LIVE_BATCH, clock=FixedClock())
            try:
                applied = await runner.run_until_idle()
            finally:
                await runner.close()
            assert applied > 0
            report = await check_projection(bus, engine, projection, clock=FixedClock())
        finally:
            await bus.close()
        comparison = report.comparison
        assert comparison is not None
        assert comparison.difference is None, comparison.difference.describe()
        assert comparison.equal
        own = [t for t in comparison.tables if t.table in projection.metadata.tables]
        assert sum(t.live_rows for t in own) > 0, "live tables are empty: the comparison proves nothing"


def test_reapplying_changes_nothing(projection: Projection, sample_log: SampleLog, engine: Engine) -> None:
    """(b) Records already applied (same offsets) and the same events at new offsets change nothing."""
    with contract_case(projection, "idempotent"):
        records = sample_log.of(projection)
        ensure_tables(engine, projection)
        assert _apply(engine, projection, records, 200) > 0
        before = _digests(engine, projection)
        assert _nonempty(_own(projection, before)) > 0

        # Redelivered: a middle batch again, then everything again in one batch.
        middle = records[len(records) // 3 : len(records) // 3 + 200]
        assert apply_batch(engine, projection, middle).applied == 0
        outcome = apply_batch(engine, projection, records)
        assert (outcome.applied, outcome.redelivered) == (0, len(records))
        assert _digests(engine, projection) == before

        # Re-published: the same events after the end of each partition (a translator that crashed
        # after publishing and published again). Offsets move on; nothing else may change.
        ends: dict[tuple[str, int], int] = {}
        for r in records:
            ends[r.topic, r.partition] = max(r.offset, ends.get((r.topic, r.partition), -1))
        again = [_moved(r, ends[r.topic, r.partition] + 1 + i) for i, r in enumerate(records)]
        outcome = apply_batch(engine, projection, again)
        assert outcome.applied == 0
        assert outcome.duplicates == len(again)
        after = _digests(engine, projection)
        assert _own(projection, after) == _own(projection, before)
        assert after["projection_applied_events"] == before["projection_applied_events"]
        assert after["projection_outbox"] == before["projection_outbox"]


@pytest.fixture
def reference(projection: Projection, sample_log: SampleLog, engine: Engine) -> Iterator[Engine]:
    """The projection applied partition after partition, in batches of 500, in a scratch area."""
    ensure_tables(engine, projection)  # the scratch lives beside the live tables
    scratch = open_scratch(engine, projection.name)
    try:
        ensure_tables(scratch.engine, projection)
        _apply(scratch.engine, projection, sample_log.of(projection), 500)
        yield scratch.engine
    finally:
        scratch.drop()


def test_partition_interleavings_converge(
    projection: Projection, sample_log: SampleLog, engine: Engine, reference: Engine
) -> None:
    """(c) Partitions interleaved otherwise (per-partition order kept), other batch sizes: same tables."""
    with contract_case(projection, "permutation"):
        records = sample_log.of(projection)
        with reference.connect() as conn:
            rows = sum(
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in projection.metadata.sorted_tables
            )
        assert rows > 0, "the reference tables are empty: the comparison proves nothing"

        @settings(
            max_examples=2,
            deadline=None,
            phases=(Phase.generate,),  # no shrinking: a failure names its seed; shrinking takes minutes
            derandomize=True,  # the same interleavings every run: a failure is reproducible
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(seed=st.integers(0, 2**32 - 1), batch=st.sampled_from([1_000, 333, 150]))
        def converges(seed: int, batch: int) -> None:
            order = _interleave(records, random.Random(seed))
            scratch = open_scratch(engine, projection.name)
            try:
                ensure_tables(scratch.engine, projection)
                _apply(scratch.engine, projection, order, batch)
                _assert_same(reference, scratch.engine, projection)
            finally:
                scratch.drop()

        converges()


def test_subject_interleavings_converge(
    projection: Projection, sample_log: SampleLog, tmp_path: Path
) -> None:
    """(c') Subjects interleaved otherwise (per-subject order kept): the same read model.

    Offsets are those of the reordered log, so the tracking rows differ by construction; every
    other compared table (the projection's own, applied event ids, staged derived events) must not.
    On SQLite only: this stronger variant is about the fold's logic, which (c) already runs on both
    databases.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    ensure_tables(engine, projection)
    reference = open_scratch(engine, projection.name)
    with contract_case(projection, "subject_permutation"):
        records = sample_log.of(projection)
        ensure_tables(reference.engine, projection)
        _apply(reference.engine, projection, records, 500)

        @settings(
            max_examples=2,
            deadline=None,
            phases=(Phase.generate,),  # no shrinking: a failure names its seed; shrinking takes minutes
            derandomize=True,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(seed=st.integers(0, 2**32 - 1), batch=st.sampled_from([1_000, 200]))
        def converges(seed: int, batch: int) -> None:
            order = _interleave_subjects(records, random.Random(seed))
            scratch = open_scratch(engine, projection.name)
            try:
                ensure_tables(scratch.engine, projection)
                _apply(scratch.engine, projection, order, batch)
                with reference.engine.connect() as a, scratch.engine.connect() as b:
                    comparison = compare(a, b, projection)
            finally:
                scratch.drop()
            unequal = [t.table for t in comparison.tables if not t.equal and t.table != "projection_tracking"]
            difference = comparison.difference
            assert not unequal, difference.describe() if difference else unequal

        try:
            converges()
        finally:
            reference.drop()
            engine.dispose()


def test_poison_is_recorded_and_the_rest_applies(
    projection: Projection, sample_log: SampleLog, engine: Engine
) -> None:
    """(d) An undecodable record in every partition: recorded as poison, the rest as without it."""
    with contract_case(projection, "poison"):
        clean, poisoned, poison = _with_poison(sample_log.of(projection))
        ensure_tables(engine, projection)
        scratch = open_scratch(engine, projection.name)
        try:
            ensure_tables(scratch.engine, projection)
            _apply(scratch.engine, projection, clean, 500)
            _apply(engine, projection, poisoned, 500)
            want = _digests(scratch.engine, projection)
        finally:
            scratch.drop()
        got = _digests(engine, projection)
        assert _own(projection, got) == _own(projection, want)
        assert got["projection_applied_events"] == want["projection_applied_events"]
        assert got["projection_tracking"] == want["projection_tracking"]
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    projection_poison.c.topic, projection_poison.c.partition, projection_poison.c.offset
                ).where(projection_poison.c.projection == projection.name)
            ).all()
            errors = conn.execute(
                select(func.count()).where(
                    projection_poison.c.projection == projection.name, projection_poison.c.error != ""
                )
            ).scalar_one()
        assert sorted(tuple(r) for r in rows) == sorted((p.topic, p.partition, p.offset) for p in poison)
        assert errors == len(poison), "every poison record says why it is not an event"


def test_an_exemption_must_still_be_needed() -> None:
    """An exempt case that fails is an expected failure; one that passes fails the suite."""
    exempt = type("Exempt", (), {"name": "exempt", "contract_exemptions": {"poison": "by design"}})()
    with pytest.raises(pytest.xfail.Exception, match="by design"), contract_case(exempt, "poison"):
        raise AssertionError
    with pytest.raises(pytest.fail.Exception, match="drop the exemption"), contract_case(exempt, "poison"):
        pass


class _ArrivalOrder:
    """A deliberately wrong read model: it remembers which subject's event arrived last."""

    name = "arrival_order"
    topics = ("canonical.asset.v1",)
    metadata = MetaData()
    last = Table(
        "arrival_order_last", metadata, Column("id", Integer, primary_key=True), Column("subject", String)
    )

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        upsert(conn, self.last, [{"id": 1, "subject": events[-1].subject}], key=("id",))


def test_the_interleaving_case_catches_an_order_dependent_read_model(
    sample_log: SampleLog, tmp_path: Path
) -> None:
    """The control for (c): a read model that depends on arrival order across partitions fails it."""
    toy = _ArrivalOrder()
    records = sample_log.of(toy)
    engines = [make_engine(f"sqlite:///{tmp_path / f'{i}.db'}") for i in range(2)]
    try:
        for e in engines:
            ensure_tables(e, toy)
        _apply(engines[0], toy, records, 500)
        _apply(engines[1], toy, _interleave(records, random.Random(1)), 500)
        with engines[0].connect() as a, engines[1].connect() as b:
            comparison = compare(a, b, toy)
    finally:
        for e in engines:
            e.dispose()
    assert comparison.difference is not None
    assert comparison.difference.table == "arrival_order_last"
