"""A guard for pynetdicom's requestor against losing a response to its own thread.

Seen with pynetdicom 3.0.4 (pinned; reported upstream in deploy/pynetdicom-upstream.md): `send_c_store` (and every `send_*`) pauses the association's
reactor thread by clearing `_reactor_checkpoint` and waiting until `_is_paused` is
True, but that flag can still be True from the reactor's previous pass, so the
reactor may run one more pass and take the peer's response off the DIMSE queue
before `send_*` does. It then drops it ("Received unexpected C-STORE service
message") and `send_*` waits out its DIMSE timeout and aborts: the peer answered,
the answer was lost. Under CPU starvation it happens a few times in hundreds of
associations (bench/receive.py, 10 senders on 2 cores), with any peer.

`keep_responses` puts a response that reaches the reactor back at the head of the
queue the waiting `send_*` reads, in order; a request from the peer (e.g. the
C-STORE sub-operations of a C-GET) is served as before. Nothing is resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from daemon.node.pynetdicom_patches import applies

log = logging.getLogger(__name__)

PATCH = "requestor keeps its responses"


@dataclass
class KeptResponses:
    count: int = 0  # responses handed back to the waiting send_*


def keep_responses(assoc: Any) -> KeptResponses:
    """Guard the established requestor `assoc`; return the count of handed-back responses."""
    kept = KeptResponses()
    if not applies(PATCH):  # written for the pinned pynetdicom (daemon.node.pynetdicom_patches)
        return kept
    serve = assoc._serve_request
    messages = assoc.dimse.msg_queue

    def serve_or_hand_back(msg: Any, context_id: int) -> None:
        if getattr(msg, "MessageIDBeingRespondedTo", None) is None:  # a request: the reactor's
            serve(msg, context_id)
            return
        kept.count += 1
        log.debug("a response taken by pynetdicom's reactor thread handed back (%d)", kept.count)
        with messages.mutex:
            messages.queue.appendleft((context_id, msg))
            messages.not_empty.notify()

    assoc._serve_request = serve_or_hand_back
    return kept
