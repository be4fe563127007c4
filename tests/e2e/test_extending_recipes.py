"""docs/extending.md followed for real: a toy file/HTTP source and a toy read model.

The hub's packages are copied into a temporary directory; every block of the doc marked
`<!-- recipe-file: PATH -->` (a new file) or `<!-- recipe-edit: PATH after|replace: LINE -->` (a
registration line) is written there exactly as the doc shows it. A subprocess with only the copy
on its path then builds the hub (hub.bootstrap.build_hub), dry-runs the sample export with
`hub mapping check toy`, ingests it as a file and again through `POST /ingest/toy` with an
integrator key, drains, and reports what is on the bus, in the read model and in the dead letters.

So the doc's skeletons cannot rot, and the files a newcomer touches are counted: the source's
package (its code and mapping), the read model's module, and the registration lines in
schemas/_base.py (the source's name), hub/translation/registry.py and hub/bootstrap.py.
"""

from __future__ import annotations

import difflib
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "extending.md"
PACKAGES = ("schemas", "topics", "adapters", "hub", "projections", "replay")
IGNORED = ("__pycache__", "*.pyc")

# What the recipe may touch, and nothing else: new files, and lines added/removed per edited file.
NEW_FILES = {"adapters/toy/__init__.py", "adapters/toy/mapping.yaml", "projections/ward_moves/__init__.py"}
EDITED_LINES = {  # path -> (lines added, lines removed)
    "schemas/_base.py": (1, 0),  # SourceSystem.TOY: the source's name is part of the contract
    "hub/translation/registry.py": (2, 0),  # import + ADAPTERS entry
    "hub/bootstrap.py": (2, 1),  # import + the make_projections list entry (one line rewritten)
}

_BLOCK = re.compile(
    r"<!-- recipe-(?P<kind>file|edit|sample): (?P<path>\S+)(?: (?P<how>after|replace): (?P<anchor>.+?))? -->\n"
    r"```[a-z]*\n(?P<body>.*?)```",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Block:
    kind: str
    path: str
    how: str | None
    anchor: str | None
    body: str


def recipe_blocks() -> list[Block]:
    return [
        Block(m["kind"], m["path"], m["how"], m["anchor"], m["body"])
        for m in _BLOCK.finditer(DOC.read_text())
    ]


def apply_edit(path: Path, block: Block) -> None:
    """Insert the block after the line that reads `anchor`, or replace that line by the block."""
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == block.anchor]
    assert len(hits) == 1, f"{block.path}: the doc's anchor {block.anchor!r} matches {len(hits)} lines"
    at = hits[0]
    body = block.body.splitlines(keepends=True)
    lines[at : at + 1] = body if block.how == "replace" else [lines[at], *body]
    path.write_text("".join(lines))


def follow_recipe(src: Path, work: Path) -> dict[str, Path]:
    """Write the doc's files and edits into the copy `src`; samples go to `work`. Returns samples."""
    samples: dict[str, Path] = {}
    for block in recipe_blocks():
        if block.kind == "sample":
            samples[block.path] = work / block.path
            samples[block.path].write_text(block.body, encoding="utf-8")
        elif block.kind == "file":
            target = src / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
        else:
            apply_edit(src / block.path, block)
    return samples


def changed_files(original: Path, copy: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (lines added, lines removed) for every file that is new or differs."""
    out: dict[str, tuple[int, int]] = {}

    def walk(cmp: filecmp.dircmp[str], rel: Path) -> None:
        for name in cmp.right_only:
            path = copy / rel / name
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            for f in files:
                out[f.relative_to(copy).as_posix()] = (len(f.read_text().splitlines()), 0)
        assert not cmp.left_only, f"the recipe removed {cmp.left_only} under {rel}"
        for name in cmp.diff_files:
            before = (original / rel / name).read_text().splitlines()
            after = (copy / rel / name).read_text().splitlines()
            diff = list(difflib.unified_diff(before, after, lineterm="", n=0))[2:]
            added = sum(1 for d in diff if d.startswith("+"))
            removed = sum(1 for d in diff if d.startswith("-"))
            out[(rel / name).as_posix()] = (added, removed)
        for name, sub in cmp.subdirs.items():
            walk(sub, rel / name)

    for package in PACKAGES:
        cmp = filecmp.dircmp(original / package, copy / package, ignore=["__pycache__"])
        walk(cmp, Path(package))
    return out


SCRIPT = r"""
import asyncio, json, sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from hub.api.app import build_api
from hub.auth.roles import Role
from hub.bootstrap import build_hub
from hub.cli import app as cli
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from projections.ward_moves import moves_per_department

data_dir, sample = Path(sys.argv[1]), Path(sys.argv[2])


async def main() -> dict:
    out: dict = {}
    async with build_hub(Settings(data_dir=data_dir, auth="keys")) as hub:
        out["systems"] = hub.ingestor.systems
        await ingest_path(hub, "toy", sample)  # by file, as `hub ingest toy FILE` does
        api = build_api(hub)
        token = hub.keys.create(Role.INTEGRATOR)[1]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://hub") as http:
            # The same rows pushed under another name: other bytes, so another message.
            pushed = sample.read_bytes().replace(b"ZC-20", b"ZC-21")
            answer = await http.post(
                "/ingest/toy",
                params={"filename": "pushed.csv"},
                content=pushed,
                headers={"Authorization": f"Bearer {token}"},
            )
            out["http"] = {"status": answer.status_code, "body": answer.json()}
        await drain(hub)
        consumer = await hub.bus.consumer(["canonical.asset.v1", "dlq.toy.v1"], group=None)
        records = []
        for _ in range(100):  # bounded: the log holds a handful of records
            batch = await consumer.poll(max_records=1000, timeout_s=0.3)
            if not batch:
                break
            records += batch
        await consumer.close()
        out["bus"] = [{"topic": r.topic, "value": json.loads(r.value)} for r in records]
        out["dead_letters"] = [d.model_dump(mode="json") for d in await hub.dead_letters.query(system="toy")]
        with hub.engine.connect() as conn:
            out["moves"] = moves_per_department(conn)
    check = CliRunner().invoke(cli, ["mapping", "check", "toy", str(sample), "--data-dir", str(data_dir)])
    out["check"] = {"exit": check.exit_code, "output": check.output}
    return out


print("RESULT " + json.dumps(asyncio.run(main()), ensure_ascii=False, default=str))
"""


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("recipe")
    src = work / "src"
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns(*IGNORED))
    samples = follow_recipe(src, work)
    changed = changed_files(REPO, src)
    print("files the recipe needed (path: +added -removed lines):")
    for path, (added, removed) in sorted(changed.items()):
        print(f"  {path}: +{added} -{removed}")
    (work / "run.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"PYTHONPATH": str(src), "HUB_LOG_LEVEL": "warning", "PYTHONDONTWRITEBYTECODE": "1"})
    proc = subprocess.run(
        [sys.executable, str(work / "run.py"), str(work / "data"), str(samples["toy-moves.csv"])],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["changed"] = changed
    result["lint"] = lint(src, [path for path in changed if path.endswith(".py")])
    return result


def lint(src: Path, files: list[str]) -> dict[str, str]:
    """ruff check and ruff format --check of the files the recipe wrote, with the project's config."""
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    ruff = Path(sys.executable).with_name("ruff")
    out = {}
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        proc = subprocess.run(
            [str(ruff), *args, *files], cwd=src, capture_output=True, text=True, timeout=60, check=False
        )
        out[args[0]] = "" if proc.returncode == 0 else proc.stdout + proc.stderr
    return out


def test_the_recipe_touches_only_the_package_its_mapping_and_the_registration_lines(
    followed: dict[str, Any],
) -> None:
    changed = followed["changed"]
    assert set(changed) == NEW_FILES | set(EDITED_LINES)
    assert {path: changed[path] for path in EDITED_LINES} == EDITED_LINES


def test_the_docs_code_is_lint_clean(followed: dict[str, Any]) -> None:
    assert followed["lint"] == {"check": "", "format": ""}


def test_a_registered_source_is_accepted_by_every_transport(followed: dict[str, Any]) -> None:
    assert "toy" in followed["systems"]  # the drop folder, `hub ingest` and the workers follow ADAPTERS
    assert followed["http"]["status"] == 202, followed["http"]
    assert followed["http"]["body"]["status_url"].startswith("/ingest/toy/")


def test_good_rows_become_canonical_events_on_the_bus(followed: dict[str, Any]) -> None:
    events = [r["value"] for r in followed["bus"] if r["topic"] == "canonical.asset.v1"]
    toy = [e for e in events if e["source"]["system"] == "toy"]
    assert len(toy) == 6  # 3 good rows, by file and by HTTP
    assert {e["type"] for e in toy} == {"asset.relocated"}
    by_card = {e["source"]["message_id"]: e for e in toy if e["payload"]["to"]["location"] == "3床"}
    icu = by_card["toy-moves.csv"]["payload"]["to"]
    assert icu["department"] == {"code": "0301", "name": "重症医学科"}  # the alias ICU, mapped
    assert by_card["toy-moves.csv"]["occurred_at"] == "2024-06-12T01:31:00Z"  # 09:31 in Shanghai
    assert len({e["event_id"] for e in toy}) == 6


def test_the_read_model_counts_moves_per_department(followed: dict[str, Any]) -> None:
    assert followed["moves"] == {"重症医学科": 4, "急诊科": 2}


def test_a_bad_row_is_a_dead_letter_naming_file_line_and_column(followed: dict[str, Any]) -> None:
    letters = sorted(followed["dead_letters"], key=lambda d: d["location"]["file"])
    assert [(d["location"]["file"], d["location"]["line"]) for d in letters] == [
        ("pushed.csv", 5),
        ("toy-moves.csv", 5),
    ]
    letter = letters[1]
    assert letter["location"]["column"] == "时间"
    assert letter["location"]["field"] == "moved_at"
    assert "昨天下午" in letter["reason"]
    dlq = [r["value"] for r in followed["bus"] if r["topic"] == "dlq.toy.v1"]
    assert len(dlq) == 2


def test_the_dry_run_lists_the_bad_row_before_anything_is_stored(followed: dict[str, Any]) -> None:
    check = followed["check"]
    assert check["exit"] == 1, check["output"]  # 1: some rows would be dead-lettered
    assert "events 3, failures 1" in check["output"]
    assert "时间" in check["output"]
