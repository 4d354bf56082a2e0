"""Biometric data at rest: templates, face crops, event snapshots and the index file sealed
with AES-256-GCM (``cryptography``) when the site sets a key.

The key is 32 random bytes, base64-encoded, in ``FACEID_KEY`` or in the file named by
``FACEID_KEY_FILE`` (``openssl rand -base64 32 > /etc/faceid/key``; keep the file
owner-only). A sealed value is ``fid1`` + a 12-byte random nonce + ciphertext and tag; the
column it belongs to is authenticated too, so a sealed face crop cannot be passed off as a
template. Values written before a key was set stay readable (they are not sealed); a sealed
value without the key, or with another key, is an error, never garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceid.errors import StoreError, UsageError

MAGIC = b"fid1"


def load_key() -> bytes | None:
    """The site key from ``FACEID_KEY`` or ``FACEID_KEY_FILE``; None when neither is set."""
    text = os.environ.get("FACEID_KEY", "").strip()
    where = "FACEID_KEY"
    if not text and os.environ.get("FACEID_KEY_FILE"):
        where = f"FACEID_KEY_FILE {os.environ['FACEID_KEY_FILE']}"
        try:
            text = Path(os.environ["FACEID_KEY_FILE"]).read_text()[:200].strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: cannot read the key ({exc})") from None
    if not text:
        return None
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{where}: not base64 (make one with: openssl rand -base64 32)") from None
    if len(key) != 32:
        raise UsageError(f"{where}: the key is {len(key)} bytes; it must be 32 "
                         "(openssl rand -base64 32)")
    return key


class Sealer:
    """Seals and opens values of one kind (``what``: the column) with the site key, or
    passes them through when there is no key."""

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key else None

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    def seal(self, data: bytes | None, what: str) -> bytes | None:
        if data is None or self._aead is None:
            return data
        nonce = os.urandom(12)
        return MAGIC + nonce + self._aead.encrypt(nonce, bytes(data), what.encode())

    def open(self, blob: bytes | None, what: str) -> bytes | None:
        if blob is None or not bytes(blob[:4]) == MAGIC:
            return blob
        if self._aead is None:
            raise StoreError(f"the {what} data is encrypted: set FACEID_KEY or "
                             "FACEID_KEY_FILE to the site key")
        try:
            return self._aead.decrypt(bytes(blob[4:16]), bytes(blob[16:]), what.encode())
        except InvalidTag:
            raise StoreError(f"the {what} data does not open with this key (another "
                             "site's key, or the data was altered)") from None
