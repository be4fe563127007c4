"""Raw payload encryption at rest (HUB_RAW_KEY): AES-256-GCM, one random nonce per payload.

Raw messages can hold patient data (HL7 PID segments) and raw topics are kept forever, so when
a key is configured every stored or published payload is ciphertext. The sha256 recorded for a
message is always that of the plaintext: resend detection and integrity checks do not depend
on the key. Format: b"HUBENC1" + 12-byte nonce + ciphertext-with-tag.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import ArchiveError, ConfigError

MAGIC = b"HUBENC1"
NONCE_BYTES = 12


def parse_key(text: str) -> bytes:
    """A 32-byte key given as 64 hex characters or base64 (`openssl rand -hex 32`)."""
    text = text.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    msg = "HUB_RAW_KEY must be 32 bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)"
    raise ConfigError(msg)


class RawCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        """`context` (e.g. the raw ref) is authenticated: a payload cannot be moved to another record."""
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt(self, stored: bytes, *, context: bytes) -> bytes:
        if not stored.startswith(MAGIC):
            return stored  # written before a key was configured
        nonce = stored[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, stored[len(MAGIC) + NONCE_BYTES :], context)
        except InvalidTag as exc:
            raise ArchiveError(
                "raw payload does not decrypt with HUB_RAW_KEY (wrong key, or altered)"
            ) from exc


def is_encrypted(stored: bytes) -> bool:
    return stored.startswith(MAGIC)
