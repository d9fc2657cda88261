"""Channel variables shared by the controller and the dialplan templates (one list, no drift).

A test checks that the template uses every name here and no other APPLIANCE_ name.
"""

CALL_ID = "APPLIANCE_CALL_ID"  # the appliance call id
DIAL = "APPLIANCE_DIAL"  # first dial string; APPLIANCE_DIAL_2.. follow for sequential routes
DIAL_COUNT = "APPLIANCE_DIAL_COUNT"  # how many dial strings there are
RING_TIMEOUT = "APPLIANCE_RING_TIMEOUT"  # seconds each dial string rings
DIAL_OPTIONS = "APPLIANCE_DIAL_OPTIONS"  # Dial() options, e.g. the whisper subroutine
ANNOUNCE = "APPLIANCE_ANNOUNCE"  # prompt played to the caller before dialling
RECORD = "APPLIANCE_RECORD"  # 'yes': record the call (MixMonitor into the spool)
CONSENT = "APPLIANCE_CONSENT"  # prompt telling the caller the call is recorded
OPT_OUT = "APPLIANCE_OPTOUT"  # 'yes': a key pressed during the consent prompt stops recording
OPTED = "APPLIANCE_OPTED"  # the key the caller pressed, set by the dialplan
SPOOL = "APPLIANCE_SPOOL"  # the recording spool directory, a dialplan global
DNID = "APPLIANCE_DNID"  # the dialled number, set by the dialplan
KEY = "APPLIANCE_KEY"  # the AstDB key of the static fallback route in use
NOTICE = "APPLIANCE_NOTICE"  # the static route's recording notice ('-': record, no notice)
TRY = "APPLIANCE_TRY"  # the dialplan's sequential-ring counter

ALL = {
    "CALL_ID": CALL_ID,
    "DIAL": DIAL,
    "DIAL_COUNT": DIAL_COUNT,
    "RING_TIMEOUT": RING_TIMEOUT,
    "DIAL_OPTIONS": DIAL_OPTIONS,
    "ANNOUNCE": ANNOUNCE,
    "RECORD": RECORD,
    "CONSENT": CONSENT,
    "OPT_OUT": OPT_OUT,
    "OPTED": OPTED,
    "SPOOL": SPOOL,
    "DNID": DNID,
    "KEY": KEY,
    "NOTICE": NOTICE,
    "TRY": TRY,
}
