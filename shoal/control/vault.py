"""Secret values encrypted at rest: Fernet with a key file in the server's data dir."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet


def make_key(path: Path) -> None:
    path.write_bytes(Fernet.generate_key())
    path.chmod(0o600)


class Vault:
    def __init__(self, key_path: Path) -> None:
        self._fernet = Fernet(key_path.read_bytes().strip())

    def seal(self, value: bytes) -> bytes:
        return self._fernet.encrypt(value)

    def open(self, ciphertext: bytes) -> bytes:
        return self._fernet.decrypt(ciphertext)
