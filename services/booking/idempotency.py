"""The `Idempotency-Key` of a booking (R39: a double click books once).

A repeated request with the same key answers with the first result: same status, same body. The first
result holds the customer's manage link, whose token is kept nowhere else but as a hash (R41). So the
stored answer is encrypted (AES-GCM) under a key derived from the client's Idempotency-Key and the
service's secret, and the Idempotency-Key itself is kept only as a hash: the table alone reveals nothing.
A request that reuses a key with a different body is refused (422). "The same body" is the booking's
fields with `start` as an instant (another offset of the same instant is the same) and a staff booking's
interpreter language (`service._fingerprinted`). For one release a key stored by the previous one (whose
fingerprint was the body as sent) is still recognised (`legacy_request`), so that a retry across the
rolling update gets its booking, not a 422.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.booking.domain import field_error

HEADER = "Idempotency-Key"
_SHAPE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as the header draft recommends
_NONCE = 12


@dataclass(frozen=True)
class IdempotencyKey:
    key_hash: bytes
    fingerprint: bytes
    _cipher_key: bytes
    legacy_fingerprint: bytes | None = None

    @classmethod
    def of(
        cls, raw: str, *, scope: str, request: bytes, secret: str, legacy_request: bytes | None = None
    ) -> IdempotencyKey:
        if not _SHAPE.fullmatch(raw):
            raise field_error(HEADER, "1 to 255 printable characters, e.g. a UUID")
        scoped = f"{scope}\x1f{raw}".encode()
        return cls(
            key_hash=hashlib.sha256(b"otv-idempotency-key\x1f" + scoped).digest(),
            fingerprint=hashlib.sha256(scope.encode() + b"\x1f" + request).digest(),
            _cipher_key=hmac.new(secret.encode(), b"otv-idempotent-answer\x1f" + scoped, "sha256").digest(),
            legacy_fingerprint=(
                hashlib.sha256(scope.encode() + b"\x1f" + legacy_request).digest() if legacy_request else None
            ),
        )

    def matches(self, fingerprint: bytes) -> bool:
        if hmac.compare_digest(self.fingerprint, fingerprint):
            return True
        return self.legacy_fingerprint is not None and hmac.compare_digest(
            self.legacy_fingerprint, fingerprint
        )

    def seal(self, body: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self._cipher_key).encrypt(nonce, body, self.key_hash)

    def open(self, sealed: bytes) -> bytes | None:
        """The stored answer, or None when it cannot be read (the service's secret has changed)."""
        try:
            return AESGCM(self._cipher_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], self.key_hash)
        except InvalidTag:
            return None


def reused_with_other_request() -> Exception:
    return field_error(HEADER, "was used before for a different request; use a new key for a new booking")
