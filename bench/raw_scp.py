"""The ceiling for a Python receiver: a minimal pynetdicom C-STORE SCP that writes the
received bytes to disk (no fsync, no database). Usage: raw_scp.py PORT DIR"""

import sys
from pathlib import Path

from pynetdicom import AE, AllStoragePresentationContexts, evt

out = Path(sys.argv[2])


def on_store(event: evt.Event) -> int:
    (out / f"{event.request.AffectedSOPInstanceUID}.dcm").write_bytes(event.encoded_dataset())
    return 0x0000


ae = AE(ae_title="RAW")
ae.maximum_pdu_size = 4_194_304
ae.maximum_associations = 20
ae.supported_contexts = AllStoragePresentationContexts
ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, on_store)])
