"""API keys: hashed at rest, checked in constant time, refused with a reason when revoked, expired or forged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from hub.auth.keys import InvalidKeyError, KeyStore, api_keys, split_token
from hub.auth.roles import ANONYMOUS, ROLE_PERMISSIONS, Permission, Principal, Role
from hub.errors import ConfigError
from hub.settings import AuthMode, Mode, Settings
from projections.runtime.db import make_engine
from tests.fixtures.postgres import db_url  # noqa: F401  (fixture)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    e = make_engine(db_url)
    yield e
    with e.begin() as conn:
        conn.execute(api_keys.delete())
    e.dispose()


class TestKeyStore:
    def test_a_created_key_authenticates_as_its_role_and_department(self, engine: Engine) -> None:
        store = KeyStore(engine)
        info, token = store.create(Role.VIEWER, department="重症医学科", label="ICU 看板", now=NOW)
        principal = store.authenticate(token, now=NOW)
        assert principal == Principal(
            key_id=info.key_id, role=Role.VIEWER, department="重症医学科", label="ICU 看板"
        )

    def test_only_a_hash_of_the_secret_is_stored(self, engine: Engine) -> None:
        _, token = KeyStore(engine).create(Role.ADMIN, now=NOW)
        secret = token.split("_", 2)[2]
        with engine.connect() as conn:
            stored = conn.execute(select(api_keys)).one()
        assert secret not in repr(stored)
        assert len(stored.secret_sha256) == 64

    def test_a_changed_secret_is_unknown(self, engine: Engine) -> None:
        _, token = KeyStore(engine).create(Role.ADMIN, now=NOW)
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        with pytest.raises(InvalidKeyError, match="unknown"):
            KeyStore(engine).authenticate(forged, now=NOW)

    def test_revoked_and_expired_keys_are_refused_with_the_reason(self, engine: Engine) -> None:
        store = KeyStore(engine)
        revoked, revoked_token = store.create(Role.AUDITOR, now=NOW)
        _, expiring_token = store.create(Role.AUDITOR, expires_at=NOW + timedelta(days=1), now=NOW)
        assert store.revoke(revoked.key_id, now=NOW)
        with pytest.raises(InvalidKeyError, match="revoked") as caught:
            store.authenticate(revoked_token, now=NOW)
        assert caught.value.key_id == revoked.key_id
        assert store.authenticate(expiring_token, now=NOW).role is Role.AUDITOR
        with pytest.raises(InvalidKeyError, match="expired"):
            store.authenticate(expiring_token, now=NOW + timedelta(days=1))
        assert not store.revoke("nosuchkey")

    def test_list_shows_state_in_creation_order(self, engine: Engine) -> None:
        store = KeyStore(engine)
        first, _ = store.create(Role.APP, now=NOW)
        second, _ = store.create(Role.INTEGRATOR, now=NOW + timedelta(seconds=1))
        store.revoke(first.key_id, now=NOW)
        assert [(k.key_id, k.state(NOW)) for k in store.list()] == [
            (first.key_id, "revoked"),
            (second.key_id, "active"),
        ]


class TestTokens:
    @given(st.text(max_size=80))
    def test_anything_else_is_malformed_never_a_crash(self, text: str) -> None:
        """Whatever a client sends, the answer is a key id and secret or InvalidKeyError."""
        try:
            key_id, secret = split_token(text)
        except InvalidKeyError:
            return
        assert text.strip() == f"hub_{key_id}_{secret}"
        assert key_id.isalnum()

    def test_a_created_token_splits_back(self, tmp_path: Path) -> None:
        info, token = KeyStore(make_engine(f"sqlite:///{tmp_path / 'k.db'}")).create(Role.APP)
        assert split_token(token)[0] == info.key_id


class TestRoles:
    def test_only_auditor_and_admin_read_raw_bytes(self) -> None:
        assert {r for r, p in ROLE_PERMISSIONS.items() if Permission.RAW_PAYLOAD in p} == {
            Role.AUDITOR,
            Role.ADMIN,
        }

    def test_every_role_reads_the_read_models(self) -> None:
        assert all(Permission.READ in p for p in ROLE_PERMISSIONS.values())

    def test_department_scope_matches_code_or_name(self) -> None:
        ward = Principal(key_id="k", role=Role.VIEWER, department="0301")
        assert ward.sees("0301", "重症医学科")
        assert not ward.sees("0302", "0301x")
        assert not ward.sees(None, None)
        assert ANONYMOUS.sees(None, None)


class TestBindPolicy:
    def test_demo_mode_without_keys_stays_on_loopback(self) -> None:
        assert not Settings(api_host="127.0.0.1").auth_required
        Settings(api_host="::1")
        Settings(api_host="localhost")
        with pytest.raises(ConfigError, match="HUB_AUTH=keys"):
            Settings(api_host="0.0.0.0")  # noqa: S104

    def test_keys_or_an_explicit_proxy_allow_other_binds(self) -> None:
        assert Settings(api_host="0.0.0.0", auth=AuthMode.KEYS).auth_required  # noqa: S104
        assert not Settings(api_host="10.1.2.3", allow_open_bind=True).auth_required

    def test_production_requires_keys_unless_told_otherwise(self) -> None:
        prod = Settings(mode=Mode.PRODUCTION, secret_key="s" * 40, raw_key="7f" * 32)
        assert prod.auth_required
        with pytest.raises(ConfigError, match="HUB_AUTH=keys"):
            Settings(
                mode=Mode.PRODUCTION,
                secret_key="s" * 40,
                raw_key="7f" * 32,
                auth=AuthMode.OFF,
                api_host="0.0.0.0",  # noqa: S104
            )

    def test_production_keeps_raw_messages_encrypted_unless_told_otherwise(self) -> None:
        with pytest.raises(ConfigError, match="HUB_RAW_KEY"):
            Settings(mode=Mode.PRODUCTION, secret_key="s" * 40)
        assert Settings(mode=Mode.PRODUCTION, secret_key="s" * 40, raw_plaintext=True).raw_key is None
