"""HIS adapter: HL7 v2 over MLLP (or files) -> inventory and asset events.

Parts, each usable on its own:

- mllp.py       MLLP framing (`MllpFramer`, `frame`) and the asyncio listener `serve_mllp`;
- decode.py     bytes -> text, charset decided before any splitting (channel, BOM, MSH-18, UTF-8, GB18030);
- tokenize.py   fast lazy tokeniser (`tokenise`, `Message.get`, `Segment.field`, escape/unescape);
- batch.py      `split_messages` for FHS/BHS batches and concatenated messages;
- header.py     `header(payload)` -> MessageHeader (MSH-3/4/10... for dedupe and ACKs);
- translate.py  the pure translator (DFT, ORU/ORM/OMG, ESU, MFN^M16 -> events);
- ack.py        `build_ack` (AA/AE/AR with ERR), `AckError`;
- validate.py   opt-in strict validation with hl7apy;
- patient.py    `patient_token`: keyed HMAC, the only form in which a patient leaves the adapter;
- mapping.py    `HisMapping` (`with_secret` before use), `load_his_mapping`, mapping.yaml defaults.
"""

from __future__ import annotations

from adapters.base import AdapterSpec
from adapters.his.mapping import DEFAULT_MAPPING, HisMapping, PatientSecretMissing, load_his_mapping
from adapters.his.translate import translate
from schemas._base import SourceSystem

VERSION = "his/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.HIS,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_his_mapping,
    translate=translate,
    snapshot_types=frozenset(),
)

__all__ = ["ADAPTER", "VERSION", "HisMapping", "PatientSecretMissing", "load_his_mapping", "translate"]
