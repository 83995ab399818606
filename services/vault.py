"""Files at rest: AES-256-GCM with a random data key per file, wrapped by the master key.

Each file's bytes are encrypted with its own 256-bit data key; the data key is stored in the
database wrapped (AES-GCM) by the master key from PUENTE_ENCRYPTION_KEY. Rotating the master key
re-wraps data keys only; file contents are never re-encrypted. Both encryptions bind the storage
key as associated data, so a file swapped for another, or a key moved to another row, fails to
open. Files live under random names in PUENTE_STORAGE_DIR and are never served by a static route.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
NONCE = 12


class TamperedFile(Exception):
    """The stored bytes do not match what was stored (ciphertext or fingerprint mismatch)."""


class UnknownMasterKey(Exception):
    """The file's data key was wrapped by a master key that is not configured."""


def new_master_key() -> str:
    """A fresh master key as PUENTE_ENCRYPTION_KEY expects it (urlsafe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class MasterKeys:
    """The configured master keys: the first wraps new data keys, all of them unwrap."""

    keys: tuple[bytes, ...]

    @classmethod
    def parse(cls, value: str) -> "MasterKeys":
        """Reads "current[,previous…]" (urlsafe base64 of 32 bytes each)."""
        keys = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            try:
                raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("PUENTE_ENCRYPTION_KEY must hold 32-byte keys (urlsafe base64), current first")
            keys.append(raw)
        if not keys:
            raise ValueError("PUENTE_ENCRYPTION_KEY is empty")
        return cls(tuple(keys))

    @classmethod
    def development(cls, path: Path) -> "MasterKeys":
        """A key kept in a local file for the demo and development (production requires the setting)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Written aside, then linked into place: processes starting together (gunicorn's workers)
            # see no file or a whole one, never an empty one, and all use the one that won.
            fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=".master-key-")
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(new_master_key())
                os.link(scratch, path)
                log.warning("no PUENTE_ENCRYPTION_KEY: using a development key kept in %s", path)
            except FileExistsError:
                pass
            finally:
                os.unlink(scratch)
        return cls.parse(path.read_text())

    @staticmethod
    def key_id(key: bytes) -> str:
        return hashlib.sha256(b"puente-master-key:" + key).hexdigest()[:16]

    @property
    def current_id(self) -> str:
        return self.key_id(self.keys[0])

    def by_id(self, key_id: str) -> bytes:
        for key in self.keys:
            if self.key_id(key) == key_id:
                return key
        raise UnknownMasterKey(key_id)


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int
    wrapped_key: bytes
    key_id: str


class Vault:
    """Encrypted file store: put() returns what the Document row keeps; get() verifies on the way out."""

    def __init__(self, root: Path, keys: MasterKeys):
        self.root = Path(root)
        self.keys = keys

    def _path(self, storage_key: str) -> Path:
        return self.root / storage_key[:2] / storage_key

    def put(self, data: bytes) -> StoredFile:
        """Encrypts under a fresh data key and writes under a random name (fsynced, then renamed)."""
        storage_key = secrets.token_hex(16)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE)
        blob = nonce + AESGCM(data_key).encrypt(nonce, data, storage_key.encode())
        path = self._path(storage_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        wrapped = self._wrap(data_key, storage_key, self.keys.keys[0])
        return StoredFile(storage_key, hashlib.sha256(data).hexdigest(), len(data), wrapped, self.keys.current_id)

    def get(self, storage_key: str, wrapped_key: bytes, key_id: str, sha256: str) -> bytes:
        """Decrypts and re-checks the SHA-256 taken at ingest; TamperedFile on any mismatch."""
        data_key = self._unwrap(wrapped_key, storage_key, key_id)
        blob = self._path(storage_key).read_bytes()
        try:
            data = AESGCM(data_key).decrypt(blob[:NONCE], blob[NONCE:], storage_key.encode())
        except (InvalidTag, ValueError):
            raise TamperedFile(storage_key) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise TamperedFile(storage_key)
        return data

    def rewrap(self, storage_key: str, wrapped_key: bytes, key_id: str) -> tuple[bytes, str]:
        """The same data key wrapped by the current master key (rotation touches no file)."""
        data_key = self._unwrap(wrapped_key, storage_key, key_id)
        return self._wrap(data_key, storage_key, self.keys.keys[0]), self.keys.current_id

    def delete(self, storage_key: str) -> None:
        self._path(storage_key).unlink(missing_ok=True)

    @staticmethod
    def _wrap(data_key: bytes, storage_key: str, master: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + AESGCM(master).encrypt(nonce, data_key, b"puente-data-key:" + storage_key.encode())

    def _unwrap(self, wrapped: bytes, storage_key: str, key_id: str) -> bytes:
        master = self.keys.by_id(key_id)
        try:
            return AESGCM(master).decrypt(wrapped[:NONCE], wrapped[NONCE:], b"puente-data-key:" + storage_key.encode())
        except (InvalidTag, ValueError):
            raise TamperedFile(storage_key) from None
