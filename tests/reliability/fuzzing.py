"""What the fuzz tests share: budgets, seeds from the samples, mutation strategies, the contract check.

The contract every reader and translator is held to: bad input ends in `MalformedMessage` (or a
subclass) or in `Failure`s that say where; never another exception, never a hang. A fuzz test
therefore runs the code on a mutated input and lets anything but `MalformedMessage` fail it.

Budgets: each fuzz test runs twice as parameters, `fast` (a few dozen examples, in the default
suite) and `soak` (thousands, only with `-m soak` / `make soak`). `HUB_FUZZ_EXAMPLES` overrides
the soak budget.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import fhir, his, hrp, oa, spd
from adapters.base import AdapterSpec, TranslateContext, Translation
from adapters.errors import MalformedMessage
from hub.ports import RawRecord

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CORPUS = ROOT.parent / "shared" / "corpus"  # the third-party corpus beside the repository (CI lays it there)

FAST_EXAMPLES = 25
SOAK_EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "2000"))
BUDGETS = [
    pytest.param(FAST_EXAMPLES, id="fast"),
    pytest.param(SOAK_EXAMPLES, id="soak", marks=pytest.mark.soak),
]
RECEIVED = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)
SECRET = b"fuzz-secret-for-patient-tokens-0123456789"

# Bytes that mean something to one of the formats: delimiters, frame bytes, escapes, quotes,
# markup, JSON punctuation, numbers that overflow, and lead/trail bytes of GBK, GB18030 and UTF-8.
TOKENS: tuple[bytes, ...] = (
    b"\r", b"\n", b"\r\n", b"|", b"^", b"~", b"\\", b"&", b"\x0b", b"\x1c", b"\x1c\r",
    b"MSH|^~\\&|", b"\rMSH|^~\\&|A|B|C|D|20240101||DFT^P03|X|P|2.5\r", b"\\X0D\\", b"\\XFF\\", b"\\E\\",
    b"FHS|^~\\&|\r", b'"', b'""', b",", b";", b"\t", b"<", b">", b"</", b"&amp;", b"&#0;", b"&x;",
    b"<![CDATA[", b"<?xml version='1.0' encoding='gbk'?>", b"<?xml version='1.0' encoding='punycode'?>", b"{", b"}", b"[", b"]", b":", b"null",
    b"1e999999999", b"-0", b"99999999999999999999999", b"NaN", b"\x00", b"\xff", b"\xfe\xff", b"\x81",
    b"\x81\x30", b"\xef\xbb\xbf", "呼吸机".encode("gbk"), "呼吸机".encode(), "𠀀".encode("gb18030"),
    b'=HYPERLINK("http://x")', b"+cmd", b"@SUM(A1)", b"\xe2\x80\xae", b"9" * 40,
)  # fmt: skip


def fuzz(budget: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    """Run `check` on `budget` examples drawn from `strategy` (no deadline: the machine is shared).

    Prints how many cases ran (`pytest -s` shows it; the soak figures are summed from it).
    """
    cases = 0

    def counted(value: Any) -> None:
        nonlocal cases
        cases += 1
        check(value)

    counted.__name__ = counted.__qualname__ = check.__qualname__  # the example database keys on it
    run = settings(
        max_examples=budget,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )(given(strategy)(counted))
    try:
        run()
    finally:
        print(f"\nfuzz {check.__module__}.{check.__qualname__}: {cases} cases")


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes], max_ops: int = 6) -> bytes:
    """A seed with 1..max_ops byte-level edits: flips, insertions of tokens, deletions, copies, cuts."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("flip", "token", "bytes", "delete", "copy", "truncate")))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "bytes":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "copy":
            end = min(len(data), pos + draw(st.integers(1, 256)))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 4))
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def seeds(*paths: Path) -> st.SearchStrategy[bytes]:
    return st.sampled_from([p.read_bytes() for p in paths])


# ---- JSON documents mutated by structure (reaches the translators, not only the parser) ----

_HUGE = "\x00huge-integer"
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.just(_HUGE)  # becomes an integer past int()'s 4300-digit limit once dumped
    | st.sampled_from(["", " ", "0", "-1", "1e999", "2024-13-45", "2024-06-30T25:00:00Z", "Device/1", "#x"])
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated_json(draw: st.DrawFn, documents: list[Any], max_ops: int = 3) -> bytes:
    """A JSON document with values replaced, keys dropped or added at random places."""
    doc = json.loads(json.dumps(draw(st.sampled_from(documents))))
    for _ in range(draw(st.integers(1, max_ops))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(("replace", "delete", "add")))
        if op == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        else:
            parent.insert(path[-1], draw(JSON_VALUES))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return text.replace(json.dumps(_HUGE), "1" + "0" * 4400).encode()


# ---- XLSX: mutate one XML part inside the zip, so openpyxl gets past the zip layer ----


@st.composite
def mutated_xlsx(draw: st.DrawFn, workbooks: list[bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(draw(st.sampled_from(workbooks))))
    parts = {info.filename: source.read(info) for info in source.infolist()}
    xml_parts = sorted(n for n in parts if n.endswith(".xml"))
    target = draw(
        st.sampled_from([n for n in xml_parts if "sheet" in n.lower() or "String" in n] or xml_parts)
    )
    parts[target] = draw(mutated(st.just(parts[target])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


# ---- running the adapters the way the hub does ----


def raw_record(system: str, filename: str, metadata: dict[str, str] | None = None) -> RawRecord:
    return RawRecord(
        raw_ref=f"raw-{filename}",
        system=system,
        site="demo",
        message_id=filename,
        sha256="0" * 64,
        size=0,
        transport="file",
        received_at=RECEIVED,
        metadata={"filename": filename, **(metadata or {})},
    )


ADAPTERS: dict[str, AdapterSpec] = {
    "his": his.ADAPTER,
    "hrp": hrp.ADAPTER,
    "spd": spd.ADAPTER,
    "oa": oa.ADAPTER,
    "fhir": fhir.ADAPTER,
}


@cache
def default_mapping(system: str) -> Any:
    adapter = ADAPTERS[system]
    loaded = adapter.load_mapping(adapter.default_mapping)
    return loaded.with_secret(SECRET) if system == "his" else loaded


def translate(
    system: str, payload: bytes, filename: str, metadata: dict[str, str] | None = None
) -> Translation:
    """The adapter's translator on `payload`; only MalformedMessage may escape (the caller lets it)."""
    adapter = ADAPTERS[system]
    mapping = default_mapping(system)
    ctx = TranslateContext(
        site="demo",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=adapter.version,
        mapping_version=mapping.version,
    )
    return adapter.translate(raw_record(system, filename, metadata), payload, mapping, ctx)


def translate_or_refuse(
    system: str, payload: bytes, filename: str, metadata: dict[str, str] | None = None
) -> Translation | MalformedMessage:
    """The Translation, or the MalformedMessage it raised (its text must not be empty)."""
    try:
        return translate(system, payload, filename, metadata)
    except MalformedMessage as exc:
        refusal = exc
    assert str(refusal).strip(), "a refusal must say why"
    return refusal


def assert_failures_located(translation: Translation | MalformedMessage, *, needs_line: bool) -> None:
    """Every Failure names where it is: a position, and a file line / segment / element path."""
    if isinstance(translation, MalformedMessage):
        return
    for failure in translation.failures:
        assert failure.position, failure
        assert failure.reason.strip(), failure
        where = failure.location
        assert where.as_dict(), failure
        if needs_line:
            assert where.line is not None, failure
