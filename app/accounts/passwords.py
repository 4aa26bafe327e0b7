"""Password hashing with Argon2id (argon2-cffi), cost settable for the test suite."""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1 if memory_kib < 65536 else 4)
    # A hash to verify against when the email is unknown, so both paths take the same time.
    return hasher, hasher.hash("threshold-timing-equaliser")


def _hasher() -> tuple[PasswordHasher, str]:
    config = current_app.config if has_app_context() else {}
    # Defaults: argon2-cffi's RFC 9106 "low memory" profile (t=3, 64 MiB).
    return _hasher_for(int(config.get("ARGON2_TIME_COST", 3)), int(config.get("ARGON2_MEMORY_KIB", 65536)))


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; an unknown user still costs one verification."""
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher()[0].check_needs_rehash(password_hash)
