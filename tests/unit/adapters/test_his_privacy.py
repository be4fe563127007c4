"""Patients never leave the HIS adapter: only a keyed-HMAC token does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.errors import MalformedMessage
from adapters.his.ack import AckError, build_ack
from adapters.his.batch import split_messages
from adapters.his.decode import decode
from adapters.his.header import header
from adapters.his.mapping import default_mapping
from adapters.his.patient import patient_token
from adapters.his.tokenize import tokenise
from schemas.catalogue import dump_event
from tests.unit.adapters.test_his_samples import SECRET, run, sample_files

# PID fields that identify a person, and which components of them do: for identifiers (CX) the
# number itself, not the assigning authority or type code (a facility code the MSH also carries).
_PID_COMPONENTS = {
    2: (1,),
    3: (1,),
    4: (1,),
    18: (1,),
    19: (1,),
    20: (1,),  # ids, account, SSN, licence
    5: range(1, 7),
    6: range(1, 7),
    9: range(1, 7),  # name, mother's maiden name, alias
    7: (1,),  # birth date
    11: range(1, 6),
    13: (1,),
    14: (1,),  # address, phones
}


def patient_strings(payload: bytes) -> set[str]:
    """Every identifying PID value in a payload, down to components/subcomponents long enough to be specific."""
    found: set[str] = set()
    decoded = decode(payload)
    for part in split_messages(decoded.text.encode("utf-8")):
        message = tokenise(part.decode("utf-8"), strict=False)
        for pid in message.segments("PID"):
            for n, components in _PID_COMPONENTS.items():
                for rep in range(pid.repetitions(n)):
                    for c in components:
                        for s in range(1, 4):
                            value = pid.field(n, c, rep, s).strip()
                            if len(value) >= (2 if not value.isascii() else 4):
                                found.add(value)
    return found


def everything_emitted(payload: bytes, message_id: str) -> str:
    """All a translation lets out of the adapter (events, failures, notes, skips) and the ACKs they cause, as text."""
    result = run(payload, message_id=message_id)
    parts = [dump_event(e.event).decode("utf-8") for e in result.events]
    parts += [
        json.dumps([f.position, f.reason, f.code, f.location.as_dict(), f.excerpt])
        for f in (*result.failures, *result.notes)
    ]
    parts += list(result.skipped)
    inbound = header(payload)
    for failure in (*result.failures, *result.notes):
        ack = build_ack(
            inbound, "AE", error=AckError.from_failure(failure), now=datetime(2024, 6, 20, tzinfo=UTC)
        )
        parts.append(ack.decode(inbound.encoding))
    return "\n".join(parts)


def translatable_samples() -> list[Path]:
    keep = []
    for path in sample_files():
        try:
            header(path.read_bytes())
        except MalformedMessage:
            continue
        keep.append(path)
    return keep


class TestNoPatientDataLeaves:
    @pytest.mark.parametrize("path", translatable_samples(), ids=lambda p: p.name)
    def test_no_pid_value_appears_in_events_failures_or_acks(self, path):
        """No identifier, name, birth date or other PID value of the sample appears in what the adapter emits."""
        payload = path.read_bytes()
        secrets = patient_strings(payload)
        emitted = everything_emitted(payload, header(payload).control_id)
        leaked = sorted(s for s in secrets if s in emitted)
        assert leaked == []

    def test_the_check_finds_patient_strings_in_the_samples(self):
        """The PHI collector sees names, MRNs and birth dates (so the test above can fail)."""
        secrets = patient_strings((Path(sample_files()[0])).read_bytes())
        assert {"MR20240001", "王小明", "WANG XIAOMING", "19650312", "110101196503121234"} <= secrets

    def test_gbk_patient_name_with_delimiter_trail_byte_does_not_leak(self):
        """李瑋 (瑋 ends in 0x7C) is neither in the events nor spilled into a neighbouring field."""
        payload = next(p for p in sample_files() if "gbk" in p.name).read_bytes()
        emitted = everything_emitted(payload, header(payload).control_id)
        assert "李瑋" not in emitted
        assert "瑋" not in emitted

    def test_failures_quote_codes_not_patients(self):
        """A failing unit in a message with a PID: the reason names the code, never the patient."""
        payload = next(p for p in sample_files() if "unknown_department" in p.name).read_bytes()
        emitted = everything_emitted(payload, header(payload).control_id)
        assert "9999" in emitted
        assert "郑华" not in emitted
        assert "MR20240009" not in emitted


class TestPatientToken:
    def test_token_is_deterministic_and_prefixed(self):
        """Same secret, authority and identifier: same `pt_` token."""
        token = patient_token(SECRET, "XXRMYY", "MR20240001")
        assert token == patient_token(SECRET, "XXRMYY", " MR20240001 ")
        assert token.startswith("pt_")
        assert len(token) == 43

    def test_token_depends_on_secret_and_authority(self):
        """Another secret or another assigning authority gives another token."""
        token = patient_token(SECRET, "XXRMYY", "MR1")
        assert token != patient_token(SECRET + b"x", "XXRMYY", "MR1")
        assert token != patient_token(SECRET, "OTHER", "MR1")

    def test_token_does_not_contain_the_identifier(self):
        """The identifier cannot be read off the token."""
        assert "12345678" not in patient_token(SECRET, "H", "12345678")

    def test_short_secret_is_refused(self):
        """A guessable secret (under 16 bytes) is refused."""
        with pytest.raises(ValueError, match="at least 16 bytes"):
            patient_token(b"short", "H", "1")
        with pytest.raises(ValueError, match="at least 16 bytes"):
            default_mapping().with_secret(b"short")

    def test_empty_identifier_has_no_token(self):
        """An empty identifier is an error, not a token shared by every anonymous patient."""
        with pytest.raises(ValueError, match="empty identifier"):
            patient_token(SECRET, "H", "  ")

    def test_preferred_identifier_type_is_used(self):
        """PID-3's MR repetition is tokenised even when another type comes first."""
        pid = "PID|1||110101196503121234^^^CHN^NNCHN~MR9^^^H^MR||X^Y"
        payload = (
            f"MSH|^~\\&|A|B|||20240101||ORU^R01|1|P|2.5\r{pid}\rOBX|1|ST|X||v||||||F|||20240101||||DEV\r"
        )
        (emitted,) = run(payload.encode()).events
        assert emitted.event.payload.patient_token == patient_token(SECRET, "H", "MR9")
