"""Where received files live: random names under PUENTE_STORAGE_DIR, fingerprinted with SHA-256.

Files are kept exactly as received (the evidence); type sniffing, quality checks and
encryption at rest are the documents pipeline's job and wrap this store.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def put(self, data: bytes) -> StoredFile:
        """Writes the bytes under a random, unguessable name and returns its fingerprint."""
        key = secrets.token_hex(16)
        path = self.root / key[:2] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return StoredFile(key, hashlib.sha256(data).hexdigest(), len(data))

    def get(self, key: str) -> bytes:
        return (self.root / key[:2] / key).read_bytes()
