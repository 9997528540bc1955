"""AE titles as the standard compares them: trailing spaces are padding, leading spaces
are part of the title (`' PACS'` is not `PACS`).

pynetdicom 3.0 strips both ends of the Called and Calling AE Title when it decodes an
A-ASSOCIATE-RQ (`pynetdicom.pdu.A_ASSOCIATE_RQ.called_ae_title` setter), so its checks
(`AE.require_calling_aet`, `AE.require_called_aet`) would let `' PACS'` in as `PACS`.
`handlers()` put the titles back as the peer sent them, trailing padding removed,
through pynetdicom's own events: `EVT_DATA_RECV` sees the raw PDU before it is decoded,
`EVT_PDU_RECV` the decoded PDU before the ACSE reads it (both in
`DULServiceProvider._decode_pdu`). pynetdicom's checks then reject with their standard
reasons (PS3.8 9.3.4: 0x03 calling AE title not recognized, 0x07 called AE title not
recognized). The order of those two events around the decoding is an internal of
pynetdicom: `daemon.node.pynetdicom_patches` gates it on the version.
"""

from __future__ import annotations

from typing import Any

from pynetdicom import evt
from pynetdicom.pdu import A_ASSOCIATE_RQ

from daemon.node.pynetdicom_patches import applies

PATCH = "AE titles keep leading spaces"

ASSOCIATE_RQ = 0x01
CALLED = slice(10, 26)  # PS3.8 Table 9-11: Called-AE-title, 16 bytes
CALLING = slice(26, 42)  # Calling-AE-title, 16 bytes


def significant(title: str) -> str:
    """The title without its padding: trailing spaces only."""
    return title.rstrip(" ")


def same_ae(a: str, b: str) -> bool:
    return significant(a) == significant(b)


def titles_of(pdu: bytes) -> tuple[str, str] | None:
    """(called, calling) as an A-ASSOCIATE-RQ carries them, padding removed; None for
    another PDU or one too short to hold them."""
    if len(pdu) < CALLING.stop or pdu[0] != ASSOCIATE_RQ:
        return None
    return significant(pdu[CALLED].decode("ascii", "replace")), significant(pdu[CALLING].decode("ascii", "replace"))


_RAW = "_nadir_raw_ae_titles"  # on the association: freed with it


def on_data(event: evt.Event) -> None:
    """EVT_DATA_RECV: an A-ASSOCIATE-RQ's titles, as sent, kept on its association."""
    titles = titles_of(event.data)
    if titles is not None:
        setattr(event.assoc, _RAW, titles)


def on_pdu(event: evt.Event) -> None:
    """EVT_PDU_RECV: the decoded A-ASSOCIATE-RQ given back the leading spaces pynetdicom
    stripped (a title it refused stays refused)."""
    titles = getattr(event.assoc, _RAW, None)
    pdu = event.pdu
    if titles is None or not isinstance(pdu, A_ASSOCIATE_RQ):
        return
    delattr(event.assoc, _RAW)
    called, calling = titles
    if called != called.lstrip(" ") and called.strip():
        pdu.called_ae_title = called
    if calling != calling.lstrip(" ") and calling.strip():
        pdu.calling_ae_title = calling


def handlers() -> list[tuple[Any, Any]]:
    """The event handlers that keep leading spaces in a received A-ASSOCIATE-RQ (none on
    a pynetdicom they were not written for)."""
    if not applies(PATCH):
        return []
    return [(evt.EVT_DATA_RECV, on_data), (evt.EVT_PDU_RECV, on_pdu)]
