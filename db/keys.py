"""API keys for ``faceid serve``: made, listed, revoked and checked here, stored as hashes.

A key is ``fid_`` + 43 URL-safe characters (256 random bits). Its first 12 characters find
the row; the SHA-256 of the whole is compared in constant time. Only the hash is stored, so
a copy of the database gives no working key. Making and revoking a key are admin events in
the audit trail (with the key's name and id, never the key)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from db.schema import ApiKey
from db.store import Store
from faceid.errors import UnknownKey, UsageError
from faceid.terminal import check_label

SCOPES = ("read", "admin")  # read: verify, identify, compare, lists; admin: also changes
PREFIX_LEN = 12


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key itself."""

    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "scope": self.scope,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, row.scope, row.created_at, row.created_by,
                   row.revoked_at)


def add_key(store: Store, name: str, scope: str) -> tuple[KeyInfo, str]:
    """Make a key; returns its description and the key, which is never retrievable again."""
    name = check_label("key name", name, 128)
    if scope not in SCOPES:
        raise UsageError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    token = "fid_" + secrets.token_urlsafe(32)
    with store.session(write=True) as s:
        row = ApiKey(name=name, prefix=token[:PREFIX_LEN], key_hash=_digest(token),
                     scope=scope, created_by=store.actor)
        s.add(row)
        s.flush()
        store.admin_event(s, "key_add", None, key_id=row.id, name=name, scope=scope)
        return _info(row), token


def list_keys(store: Store) -> list[KeyInfo]:
    with store.session() as s:
        return [_info(r) for r in s.scalars(sa.select(ApiKey).order_by(ApiKey.id))]


def revoke_key(store: Store, ref: str | int) -> KeyInfo:
    """Revoke by id (``#3`` or ``3``) or by name; a revoked key stops working at once."""
    text = str(ref).lstrip("#")
    with store.session(write=True) as s:
        q = sa.select(ApiKey)
        q = q.where(ApiKey.id == int(text)) if text.isdigit() else q.where(ApiKey.name == text)
        rows = list(s.scalars(q))
        if len(rows) != 1:
            raise UnknownKey(f"no key {ref!r}" if not rows else
                             f"{len(rows)} keys are named {ref!r}: revoke by id (#id)")
        row = rows[0]
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
            store.admin_event(s, "key_revoke", None, key_id=row.id, name=row.name)
        return _info(row)


def check_key(store: Store, token: str) -> KeyInfo | None:
    """The live key ``token`` is, or None (unknown, malformed or revoked)."""
    if not token.startswith("fid_") or len(token) > 200:
        return None
    with store.session() as s:
        row = s.scalars(sa.select(ApiKey).where(ApiKey.prefix == token[:PREFIX_LEN])).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, _digest(token)):
            return None
        return _info(row)
