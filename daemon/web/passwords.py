"""Password hashes of the console's local accounts: argon2id at OWASP's recommended minimum
(19 MiB, 2 passes, 1 lane): a script's HTTP Basic request pays one verification each time,
so the cost is kept at the minimum that is still recommended. A hash made with other
parameters (argon2-cffi's defaults) still verifies."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# verified when the user does not exist, so a wrong name costs the same time as a wrong password
_DUMMY = _HASHER.hash("not a password of anyone")
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password has at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing user (None) takes as long and is False."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
