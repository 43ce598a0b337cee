"""`shoal server backup` and `restore`: the whole control plane in one encrypted archive.

What a server cannot be rebuilt without: the database (a `pg_dump` in custom format, one
consistent snapshot of a live database) and the key files of its data dir (the cluster CA, the
API's certificate, the secrets key, the ingress root, `server.json`). They go into one tar,
sealed with AES-GCM under a key derived from a passphrase (scrypt), so a copy kept off the
machine gives nothing away. `restore` writes them into a fresh data dir, loads the dump into an
empty database (the server's own private PostgreSQL, or a DSN) and moves every node's state
version past anything an agent has seen: agents reconnect with the same CA and credentials,
take their state again, and find nothing to change.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tarfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from shoal import __version__
from shoal.errors import ShoalError

MAGIC = b"SHOAL-BACKUP-1\n"
SALT_BYTES, NONCE_BYTES = 16, 12
KEY_FILES = (
    "server.json",
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "secrets.key",
    "ingress-ca.crt",
    "ingress-ca.key",
)
DUMP = "database.dump"
MANIFEST = "manifest.json"
MAX_MEMBER_BYTES = 4 << 30


class BackupError(ShoalError):
    """A backup could not be made, read or restored."""


def _key(passphrase: str, salt: bytes) -> bytes:
    if not passphrase:
        raise BackupError("the backup passphrase is empty")
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())


def seal(plain: bytes, passphrase: str) -> bytes:
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, plain, MAGIC)


def unseal(sealed: bytes, passphrase: str) -> bytes:
    if not sealed.startswith(MAGIC):
        raise BackupError("not a shoal backup (its first bytes are not a shoal backup's)")
    salt_at, nonce_at = len(MAGIC), len(MAGIC) + SALT_BYTES
    body_at = nonce_at + NONCE_BYTES
    salt, nonce = sealed[salt_at:nonce_at], sealed[nonce_at:body_at]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed[body_at:], MAGIC)
    except InvalidTag:
        raise BackupError("wrong passphrase, or the backup file is damaged") from None


def pack(dump: bytes, files: dict[str, bytes], schema: int) -> bytes:
    """The archive's tar: manifest, database dump, key files."""
    manifest = {
        "format": 1,
        "shoal": __version__,
        "schema": schema,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "files": sorted(files),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in [(MANIFEST, json.dumps(manifest).encode()), (DUMP, dump), *sorted(files.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack(plain: bytes) -> tuple[dict[str, object], bytes, dict[str, bytes]]:
    """(manifest, dump, key files) of an archive's tar; only the names a backup holds are read."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as tar:
            for info in tar.getmembers():
                if (
                    info.isfile()
                    and info.name in {MANIFEST, DUMP, *KEY_FILES}
                    and info.size <= MAX_MEMBER_BYTES
                ):
                    handle = tar.extractfile(info)
                    members[info.name] = handle.read() if handle else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"the backup's contents are damaged ({exc})") from None
    if MANIFEST not in members or DUMP not in members:
        raise BackupError("the backup holds no manifest or no database dump")
    manifest = json.loads(members.pop(MANIFEST))
    dump = members.pop(DUMP)
    return manifest, dump, members
