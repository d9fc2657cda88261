"""Channel variables shared by the controller and the dialplan templates (one list, no drift)."""

CALL_ID = "APPLIANCE_CALL_ID"
DIAL = "APPLIANCE_DIAL"
RING_TIMEOUT = "APPLIANCE_RING_TIMEOUT"
DNID = "APPLIANCE_DNID"

ALL = {"CALL_ID": CALL_ID, "DIAL": DIAL, "RING_TIMEOUT": RING_TIMEOUT, "DNID": DNID}
