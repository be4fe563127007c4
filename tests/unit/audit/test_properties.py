"""Properties: an untampered ledger always verifies; any one flipped byte is always found at its entry."""

from __future__ import annotations

import contextlib
import json
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from projections.audit.ledger import entries
from projections.runtime.db import make_engine
from replay.audit.chain import Tamper
from replay.audit.checkpoint import load_checkpoint
from replay.audit.errors import AuditError
from replay.audit.verify import verify
from schemas.assets import AssetStatus
from schemas.envelope import EventBase
from tests.unit.audit.ledger_helpers import fill, flip_byte, place, rows, work_started
from tests.unit.projections.factories import T0, status_changed

SUBJECTS = ("A1", "A2", "A3", "B7", "C9", "WO-1", "WO-2", "WO-3")


@st.composite
def event_streams(draw: st.DrawFn) -> list[EventBase]:
    """Asset and work-order events over a few subjects, some re-published as after a translator crash."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 40))):
        if out and draw(st.integers(0, 7)) == 0:
            out.append(draw(st.sampled_from(out)))
            continue
        subject = draw(st.sampled_from(SUBJECTS))
        if subject.startswith("WO"):
            out.append(
                work_started(f"p{i}", subject, engineer=draw(st.sampled_from(["张工", "李工"])), minutes=i)
            )
        else:
            status = draw(st.sampled_from(list(AssetStatus)))
            out.append(
                status_changed(f"p{i}", subject, status, at=T0 + timedelta(minutes=draw(st.integers(0, 90))))
            )
    return out


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestVerifyProperties:
    @FAST
    @given(
        events=event_streams(),
        batch=st.integers(1, 12),
        target=st.integers(0, 10**6),
        at=st.integers(0, 10**6),
    )
    def test_untampered_passes_and_one_flipped_byte_is_found_there(
        self, events: list[EventBase], batch: int, target: int, at: int
    ) -> None:
        """For any stream: verify passes; after flipping one byte of one entry it fails, at that entry only."""
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'ledger.db'}")
            try:
                fill(engine, place(events), batch=batch)
                report = verify(engine)
                assert report.intact, report.findings
                assert report.entries == len({e.event_id for e in events})

                with engine.connect() as conn:
                    chains = sorted(
                        conn.execute(select(entries.c.topic, entries.c.partition).distinct()).all()
                    )
                chain = (chains[target % len(chains)][0], chains[target % len(chains)][1])
                seq = (target // len(chains)) % len(rows(engine, chain))
                flip_byte(engine, chain, seq, at)
                found = verify(engine).findings
            finally:
                engine.dispose()
        assert (Tamper.EDITED, chain, seq) in {(f.kind, (f.topic, f.partition), f.seq) for f in found}
        assert {((f.topic, f.partition), f.seq) for f in found} == {(chain, seq)}


class TestCheckpointParser:
    @settings(max_examples=60, deadline=None)
    @given(
        doc=st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "checkpoint",
                            "signature",
                            "site",
                            "created_at",
                            "partitions",
                            "topic",
                            "count",
                            "head_hash",
                            "value",
                        ]
                    ),
                    children,
                    max_size=4,
                )
            ),
            max_leaves=12,
        )
    )
    def test_any_json_is_a_checkpoint_or_refused(self, doc: object) -> None:
        """Whatever JSON a checkpoint file holds, loading it gives a checkpoint or an AuditError, nothing else."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cp.json"
            path.write_text(json.dumps(doc))
            with contextlib.suppress(AuditError):
                load_checkpoint(path)
