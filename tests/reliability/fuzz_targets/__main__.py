"""Coverage-guided fuzzing with atheris (libFuzzer): `python -m tests.reliability.fuzz_targets <target> [libFuzzer flags]`.

Targets: mllp (the framer, fed in pieces), hl7 (decode, header, tokenise, translate), tabular (CSV
or XLSX by the bytes, through the SPD translator), oa (XML/JSON/JSONL), fhir (JSON or XML body).
Each input must end in a result or a MalformedMessage; anything else is a crash, and libFuzzer
writes the input to `<artifact_prefix>crash-<sha1>`. A slow input (`-timeout`, seconds) is
reported as a hang, an input past `-rss_limit_mb` as a memory failure.

Without a corpus directory on the command line, `hub-data/fuzz/<target>/corpus` is used and
seeded from examples/ and the shared corpus on the first run. `make fuzz` runs every target for
FUZZ_SECONDS each. atheris is the optional `fuzz` extra (`pip install -e '.[fuzz]'`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["adapters"]):
    from adapters.errors import MalformedMessage
    from adapters.his.decode import decode
    from adapters.his.header import header
    from adapters.his.mllp import FrameTooLarge, MllpFramer
    from adapters.his.tokenize import tokenise
    from tests.reliability.fuzzing import CORPUS, EXAMPLES, ROOT, translate

SEEDS: dict[str, list[Path]] = {
    "mllp": sorted((EXAMPLES / "his").glob("*.hl7"))[:4],
    "hl7": sorted((EXAMPLES / "his").glob("*.hl7")) + sorted((CORPUS / "hl7v2").glob("*.hl7")),
    "tabular": sorted((EXAMPLES / "spd").glob("*.csv")) + sorted((EXAMPLES / "spd").glob("*.xlsx")),
    "oa": [p for p in sorted((EXAMPLES / "oa").iterdir()) if p.suffix in {".json", ".jsonl", ".xml"}],
    "fhir": sorted((EXAMPLES / "fhir").glob("*.json")) + sorted((CORPUS / "fhir").glob("*.*")),
}


def mllp(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    framer = MllpFramer(max_frame_bytes=provider.ConsumeIntInRange(1, 4096))
    while provider.remaining_bytes():
        piece = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 512))
        try:
            frames = framer.feed(piece)
        except FrameTooLarge as exc:
            frames = exc.frames
        if any(b"\x0b" in f or b"\x1c" in f or len(f) > framer.max_frame_bytes for f in frames):
            raise AssertionError("a frame with a control byte or over the limit was delivered")


def hl7(data: bytes) -> None:
    try:
        decoded = decode(data)
        header(data)
        message = tokenise(decoded.text, decoded.encoding, strict=False)
        for segment in message.segments():
            for n in range(1, len(segment.fields) + 1):
                segment.field(n, 1, repetition=1, subcomponent=1)
        translate("his", data, "fuzz.hl7")
    except MalformedMessage:
        return


def tabular(data: bytes) -> None:
    try:
        translate("spd", data, "04_出库配送单_fuzz.csv")
    except MalformedMessage:
        return


def oa(data: bytes) -> None:
    try:
        translate("oa", data, "fuzz.json")
    except MalformedMessage:
        return


def fhir(data: bytes) -> None:
    try:
        translate("fhir", data, "fuzz")
    except MalformedMessage:
        return


TARGETS = {"mllp": mllp, "hl7": hl7, "tabular": tabular, "oa": oa, "fhir": fhir}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(
            f"usage: python -m tests.reliability.fuzz_targets {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dir]"
        )
    target = sys.argv[1]
    flags = sys.argv[2:]
    if not any(not f.startswith("-") for f in flags):
        corpus = ROOT / "hub-data" / "fuzz" / target / "corpus"
        if not corpus.is_dir():
            corpus.mkdir(parents=True)
            for seed in SEEDS[target]:
                shutil.copy(seed, corpus / seed.name)
        flags.append(str(corpus))
    atheris.Setup([sys.argv[0], *flags], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
