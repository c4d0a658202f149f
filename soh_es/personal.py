"""Personal data about stakeholders, encrypted under a key per person.

The keys live outside the event log. Destroying a person's key erases their
personal data from every event and snapshot at once, while the stored bytes,
and so the hash chain over them, stay exactly as they were written.
"""

from __future__ import annotations

import base64
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Transcoding

ERASED = "[erased]"


@dataclass(frozen=True)
class Personal:
    """Personal fields of one person; ``data`` is None once they are erased."""

    subject: str
    data: dict[str, Any] | None

    @property
    def erased(self) -> bool:
        """Whether the person's key has been destroyed."""
        return self.data is None


class KeyStore(ABC):
    """Keeps one secret key per person, outside the event log."""

    @abstractmethod
    def key_for(self, subject: str, *, create: bool) -> bytes | None:
        """Returns the subject's key, creating it if asked; None once destroyed."""

    @abstractmethod
    def destroy(self, subject: str) -> bool:
        """Destroys the subject's key for good; returns whether one existed."""

    @abstractmethod
    def all_keys(self) -> dict[str, bytes | None]:
        """Returns every subject's key, None for those destroyed (for backups)."""

    @abstractmethod
    def restore_keys(self, keys: dict[str, bytes | None]) -> None:
        """Stores keys from a backup; keys already present are left as they are."""

    @staticmethod
    def new_key() -> bytes:
        """Returns a fresh 256-bit key."""
        return AESGCM.generate_key(bit_length=256)


class PersonalAsCiphertext(Transcoding):
    """Stores a Personal value as AES-GCM ciphertext under its subject's key."""

    type = Personal
    name = "personal"

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def encode(self, obj: Personal) -> dict[str, Any]:
        if obj.data is None:
            return {"subject": obj.subject, "ciphertext": None}
        key = self.keys.key_for(obj.subject, create=True)
        assert key is not None
        nonce = os.urandom(12)
        plaintext = json.dumps(obj.data, sort_keys=True).encode()
        sealed = AESGCM(key).encrypt(nonce, plaintext, obj.subject.encode())
        return {
            "subject": obj.subject,
            "ciphertext": base64.b64encode(nonce + sealed).decode("ascii"),
        }

    def decode(self, data: dict[str, Any]) -> Personal:
        subject = data["subject"]
        ciphertext = data["ciphertext"]
        key = self.keys.key_for(subject, create=False) if ciphertext else None
        if key is None:
            return Personal(subject, None)
        raw = base64.b64decode(ciphertext)
        try:
            plaintext = AESGCM(key).decrypt(raw[:12], raw[12:], subject.encode())
        except InvalidTag:
            return Personal(subject, None)
        return Personal(subject, json.loads(plaintext))
