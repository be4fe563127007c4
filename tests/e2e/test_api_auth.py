"""The API as a hospital deploys it: keys required, raw archive encrypted, sensitive reads on the ledger.

Drives the real `hub keys create` and `hub serve` in subprocesses, like an operator would, then
checks the answers each role gets and that every raw and history read ended up as a verified
entry of the audit ledger.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from schemas._base import Identifier
from schemas.ids import asset_id_for
from tests.e2e.conftest import REPO, Served, run_hub

HRP = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
RAW_KEY = "7f" * 32
ENV = {"HUB_AUTH": "keys", "HUB_RAW_KEY": RAW_KEY}
DR = asset_id_for(Identifier(scheme="hrp.card", value="ZC-2012-00001"))  # 放射科's DR in the sample ledger


def create_key(data_dir: Path, role: str, *extra: str) -> str:
    done = run_hub("keys", "create", "--role", role, *extra, data_dir=data_dir, **ENV)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("hub_")
    assert "not shown again" in done.stderr
    return token


def wait_for(check: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = check.get(url, headers=headers)
        if response.status_code == 200:
            return response
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered 200: {response.status_code} {response.text}")


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[Served, dict[str, str]]:
    data = tmp_path / "hub"
    tokens = {role: create_key(data, role) for role in ("viewer", "integrator", "auditor", "app")}
    tokens["ward"] = create_key(data, "viewer", "--department", "检验科", "--label", "检验科看板")
    return Served(data, **ENV), tokens


class TestKeysRequired:
    def test_roles_raw_access_and_the_ledger(self, keyed: tuple[Served, dict[str, str]]) -> None:
        """401 without a key; each role gets what it may; raw bytes decrypted for the auditor only; all recorded."""
        served, tokens = keyed
        served.start()

        def auth(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[role]}"}

        with httpx.Client(base_url=served.url, timeout=30) as http:
            assert http.get("/health").status_code == 200  # open: load balancers
            assert http.get("/assets").status_code == 401
            assert (
                http.get("/assets", headers={"Authorization": "Bearer hub_nope_" + "x" * 40}).status_code
                == 401
            )
            body = HRP.read_bytes()
            # A small body: a server may close the connection on a 403 before reading a large one.
            refused = http.post(
                "/ingest/hrp", content=b"x", params={"filename": "x.csv"}, headers=auth("viewer")
            )
            assert refused.status_code == 403
            accepted = http.post(
                "/ingest/hrp", content=body, params={"filename": HRP.name}, headers=auth("integrator")
            )
            assert accepted.status_code == 202, accepted.text
            ref = accepted.json()["raw_ref"]

            asset = wait_for(http, f"/assets/{DR}", auth("viewer")).json()
            assert asset["department_name"] == "放射科"
            # The 检验科 key sees its own department only; the DR is someone else's: 404, not 403.
            assert http.get(f"/assets/{DR}", headers=auth("ward")).status_code == 404
            ward = http.get("/assets", headers=auth("ward"), params={"limit": 500}).json()
            assert ward["total"] > 0
            assert {a["department_name"] for a in ward["items"]} == {"检验科"}

            history = http.get(f"/history/asset/{DR}", headers=auth("auditor"))
            assert history.status_code == 200, history.text
            assert {i["raw_ref"] for i in history.json()["items"]} == {ref}
            assert http.get(f"/history/asset/{DR}", headers=auth("viewer")).status_code == 403

            raw = http.get(f"/raw/{ref}", headers={**auth("auditor"), "X-Hub-Purpose": "asset-audit-2024"})
            assert raw.status_code == 200
            assert raw.content == body  # decrypted for the auditor, byte for byte
            assert http.head(f"/raw/{ref}", headers=auth("integrator")).status_code == 200
            assert http.get(f"/raw/{ref}", headers=auth("integrator")).status_code == 403
            assert http.get(f"/raw/{ref}", headers=auth("viewer")).status_code == 403

            # Server-Sent Events over a real socket: the first three asset events of the log, for
            # an app key (the README's roles: app and admin stream; an auditor does not).
            params = {"from": "beginning", "topics": "canonical.asset.v1", "limit": "3"}
            assert http.get("/events/stream", params=params, headers=auth("auditor")).status_code == 403
            with http.stream("GET", "/events/stream", params=params, headers=auth("app")) as events:
                assert events.headers["content-type"].startswith("text/event-stream")
                lines = [line for line in events.iter_lines() if line.startswith("event: ")]
            assert lines == ["event: asset.registered"] * 3
        served.stop()

        # On disk the archive holds ciphertext only: decryption happened for the auditor's read.
        with sqlite3.connect(served.data_dir / "archive.db") as db:
            [(stored,)] = db.execute("SELECT payload FROM raw_messages WHERE raw_ref = ?", (ref,)).fetchall()
        assert body not in bytes(stored)

        verify = run_hub("audit", "verify", data_dir=served.data_dir, **ENV)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        with sqlite3.connect(served.data_dir / "readmodels.db") as db:
            rows = db.execute(
                "SELECT entry_bytes FROM audit_ledger_entries WHERE topic = 'audit.access.v1' ORDER BY seq"
            ).fetchall()
        accesses = [json.loads(bytes(r[0]))["payload"] for r in rows]
        roles = {tokens[r].split("_")[1]: r for r in tokens}
        seen = [(roles[a["key_id"]], a["action"], a["outcome"]) for a in accesses]
        assert seen == [
            ("auditor", "history.read", "allowed"),
            ("auditor", "raw.read", "allowed"),
            ("integrator", "raw.head", "allowed"),
            ("integrator", "raw.read", "denied"),
            ("viewer", "raw.read", "denied"),
            ("app", "events.stream", "allowed"),
        ]
        assert accesses[1]["purpose"] == "asset-audit-2024"
        assert all(tokens[r] not in json.dumps(accesses) for r in tokens)


class TestKeysCommand:
    def test_list_shows_no_secret_and_revoke_takes_effect(self, tmp_path: Path) -> None:
        """`keys list --json` names role, department and state, never the secret; a revoked key is refused."""
        data = tmp_path / "hub"
        token = create_key(data, "auditor", "--department", "0301", "--label", "审计科")
        key_id = token.split("_")[1]
        listed = run_hub("keys", "list", "--json", data_dir=data)
        assert listed.returncode == 0, listed.stderr
        [row] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (row["key_id"], row["role"], row["department"], row["label"], row["state"]) == (
            key_id,
            "auditor",
            "0301",
            "审计科",
            "active",
        )
        assert token.split("_", 2)[2] not in listed.stdout
        with sqlite3.connect(data / "readmodels.db") as db:
            assert token.split("_", 2)[2] not in repr(db.execute("SELECT * FROM hub_api_keys").fetchall())
        assert run_hub("keys", "revoke", key_id, data_dir=data).returncode == 0
        assert run_hub("keys", "revoke", "nosuchkey", data_dir=data).returncode == 1
        again = [
            json.loads(line) for line in run_hub("keys", "list", "--json", data_dir=data).stdout.splitlines()
        ]
        assert again[0]["state"] == "revoked"

    def test_an_unknown_role_is_refused(self, tmp_path: Path) -> None:
        done = run_hub("keys", "create", "--role", "superuser", data_dir=tmp_path / "hub")
        assert done.returncode == 2
        assert "superuser" in done.stderr


class TestOpenBinds:
    def test_serving_without_keys_beyond_loopback_is_refused(self, tmp_path: Path) -> None:
        """HUB_API_HOST=0.0.0.0 in demo mode would expose an unauthenticated API: the hub will not start."""
        done = run_hub("serve", data_dir=tmp_path / "hub", HUB_API_HOST="0.0.0.0", timeout=60)  # noqa: S104
        assert done.returncode == 2
        assert "HUB_AUTH=keys" in done.stderr
