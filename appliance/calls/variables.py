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
CONNECT = "APPLIANCE_CONNECT"  # dynamic routes, AGI route: the route id the controller chose
READY = "APPLIANCE_READY"  # dynamic routes, AGI scripts: '1', set last, once the answer is complete
RESTRICTED = "APPLIANCE_RESTRICTED"  # '1': the caller is on the account's restrict list
# set by the integrator AGI scripts (appliance/integrator/agi.py) -----------------------------
STATUS = "APPLIANCE_STATUS"  # 'ok', or a short reason the script did nothing
CALL_ID = "APPLIANCE_CALL_ID"  # the appliance's id of the call (32 hex digits)
SOURCE = "APPLIANCE_SOURCE"  # the marketing source of the call ('google', 'flyer', ...)
MEDIUM = "APPLIANCE_MEDIUM"  # its medium ('cpc', 'organic', ...)
CAMPAIGN = "APPLIANCE_CAMPAIGN"  # its campaign
ATTRIBUTION = "APPLIANCE_ATTRIBUTION"  # how the website visit was matched: exact, likely, ...
VISIT = "APPLIANCE_VISIT"  # the id of the website visit that showed the number
FIRST_TIME = "APPLIANCE_FIRST_TIME"  # '1' first call from this caller, '0' not, '' unknown
KEYWORD = "APPLIANCE_KEYWORD"  # the visit's search keyword
CLICK_ID_TYPE = "APPLIANCE_CLICK_ID_TYPE"  # the visit's ad click id type (gclid, fbclid, ...)
LANDING_PAGE = "APPLIANCE_LANDING_PAGE"  # the visit's first page
TAGS = "APPLIANCE_TAGS"  # the call's integrator tags, comma-separated
SCORE = "APPLIANCE_SCORE"  # the call's lead score (analysis plus adjustment), '' for none
LEAD_FORM = "APPLIANCE_LEAD_FORM"  # the form of the visit's latest lead
LEAD_EMAIL = "APPLIANCE_LEAD_EMAIL"  # that lead's e-mail field
LEAD_NAME = "APPLIANCE_LEAD_NAME"  # that lead's name field
NOTE_ID = "APPLIANCE_NOTE_ID"  # the id of the note just attached
DIAL = "APPLIANCE_DIAL"  # route script: a dial string for the chosen route's first attempt
RING_TIMEOUT = "APPLIANCE_RING_TIMEOUT"  # route script: the route's ring timeout, seconds

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
    "STATUS": STATUS,
    "CALL_ID": CALL_ID,
    "SOURCE": SOURCE,
    "MEDIUM": MEDIUM,
    "CAMPAIGN": CAMPAIGN,
    "ATTRIBUTION": ATTRIBUTION,
    "VISIT": VISIT,
    "FIRST_TIME": FIRST_TIME,
    "KEYWORD": KEYWORD,
    "CLICK_ID_TYPE": CLICK_ID_TYPE,
    "LANDING_PAGE": LANDING_PAGE,
    "TAGS": TAGS,
    "SCORE": SCORE,
    "LEAD_FORM": LEAD_FORM,
    "LEAD_EMAIL": LEAD_EMAIL,
    "LEAD_NAME": LEAD_NAME,
    "NOTE_ID": NOTE_ID,
    "DIAL": DIAL,
    "RING_TIMEOUT": RING_TIMEOUT,
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
