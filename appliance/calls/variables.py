"""Names shared by the controller and the dialplan (one list each, no drift): channel
variables, contexts, user events, CDR fields. Tests check that the templates and the compiled
routes use exactly these names.
"""

# Channel variables ---------------------------------------------------------------------------
DNID = "APPLIANCE_DNID"  # the dialled number: E.164 for a tracking number, else its digits
NUMBER = "APPLIANCE_NUMBER"  # the tracking number's id; 0 for an unknown number
ROUTE = "APPLIANCE_ROUTE"  # the id of the route the call connected to
AFTER_HOURS = "APPLIANCE_AFTER_HOURS"  # 'yes' when the call arrived outside business hours
RECORDING = "APPLIANCE_RECORDING"  # the route's recording mode (appliance.vocabulary)
RECORDING_ON = "APPLIANCE_RECORDING_ON"  # '1' once the call is being recorded
OPTED = "APPLIANCE_OPTED"  # the key the caller pressed to opt out of recording
CONNECT = "APPLIANCE_CONNECT"  # dynamic routes: the route id the controller chose
READY = "APPLIANCE_READY"  # dynamic routes: '1', set last, once the answer is complete
RESTRICTED = "APPLIANCE_RESTRICTED"  # '1': the caller is on the account's restrict list

VARIABLES = {
    "DNID": DNID,
    "NUMBER": NUMBER,
    "ROUTE": ROUTE,
    "AFTER_HOURS": AFTER_HOURS,
    "RECORDING": RECORDING,
    "RECORDING_ON": RECORDING_ON,
    "OPTED": OPTED,
    "CONNECT": CONNECT,
    "READY": READY,
    "RESTRICTED": RESTRICTED,
}

# Contexts ------------------------------------------------------------------------------------
RECORD_SUB = "appliance-record"  # Gosub(prompt, opt-out, start): notice, opt-out, MixMonitor
RECORD_NOW = "appliance-record-now"  # on-demand recording, run by the dynamic feature
WHISPER = "appliance-whisper"  # Dial option U(): a prompt for whoever answers
HANGUP = "appliance-hangup"  # hangup handler: cause and hangup source into the CDR
ENTRY = "appliance-entry-"  # + route id: business hours (and the dynamic step)
CONNECT_CTX = "appliance-connect-"  # + route id: announcement, recording, Dial
RESTRICTED_CTX = "appliance-restricted-"  # + account id: the restricted callers' digit forms

TRACK_CTX = "appliance-track"  # attached mode: the site's Gosub target that runs 'track'

CONTEXTS = (RECORD_SUB, RECORD_NOW, WHISPER, HANGUP)  # the template's; the rest are compiled

# AMI user events the dialplan sends ------------------------------------------------------------
EVENT_ROUTE = "ApplianceRoute"  # Route, Number, Dialled, AfterHours, Recording, Restricted
EVENT_CONSENT = "ApplianceConsent"  # OptedOut: yes|no, Prompt: the notice played
EVENT_RECORDING = "ApplianceRecording"  # State: started|refused, Reason (restricted, ...)

# The dynamic feature (features.conf applicationmap) that starts an on-demand recording
RECORD_FEATURE = "appliance_record"

# The one CDR variable the dialplan sets (at hangup), read back by reconciliation: dialled
# number, tracking number id, route id, after hours, hangup cause, hangup source, '|' between
CDR_FIELD = "appliance"
CDR_PARTS = ("dnid", "number", "route", "after_hours", "cause", "hangup_source")
