"""What a peer's C-STORE response status means for the outbox: sent, worth retrying, or
refused for good (PS3.4 B.2.3 for the Storage Service Class, PS3.7 C for the general
statuses; the descriptions are pynetdicom's tables of the same).

Only a status that can change without anyone changing the instance is retried:
out of resources (0xA7xx), resource limitation (0x0213), processing failure (0x0110,
a PACS's internal error), duplicate invocation (0x0210, a message ID clash) and
cancel (0xFE00). Every other failure says something about the instance or about what
the peer accepts (0xA9xx data set does not match the SOP class, 0xCxxx cannot
understand, 0x0122 SOP class not supported, 0x0124 not authorised, 0x0111 duplicate
SOP instance, ...): sending it again gets the same answer, so the row becomes a dead
letter at once, the status shown, for an admin to fix and `nadir outbox resend`. A
status that no table knows is retried (with backoff, up to the maximum age).
"""

from __future__ import annotations

from pynetdicom.status import GENERAL_STATUS, STORAGE_SERVICE_CLASS_STATUS, code_to_category

TRANSIENT_CODES = frozenset({0x0110, 0x0210, 0x0213, 0xFE00})
OUT_OF_RESOURCES = range(0xA700, 0xA800)


def is_sent(status: int) -> bool:
    """Success or warning: the peer has the instance."""
    return code_to_category(status) in ("Success", "Warning")


def is_transient(status: int) -> bool:
    """A failure that may pass if the same instance is sent again later."""
    if is_sent(status):
        return False
    if status in OUT_OF_RESOURCES or status in TRANSIENT_CODES:
        return True
    return not _known(status)  # a status no table defines: not known to be permanent


def describe(status: int) -> str:
    """`0xA900 (Failure: Data Set Does Not Match SOP Class)`, as an admin reads it."""
    category, text = STORAGE_SERVICE_CLASS_STATUS.get(status) or GENERAL_STATUS.get(status) or (
        code_to_category(status), "")
    return f"0x{status:04X} ({category}{': ' + text if text else ''})"


def _known(status: int) -> bool:
    return status in STORAGE_SERVICE_CLASS_STATUS or status in GENERAL_STATUS
