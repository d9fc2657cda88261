import re
from pathlib import Path

from appliance.asterisk.render import (
    AMI_EVENTS,
    NOLOAD,
    PHONES_CONTEXT,
    EndpointView,
    TrunkView,
    pjsip_sections,
    render_files,
    templates_dir,
)
from appliance.calls import cdr
from appliance.calls import variables as var
from appliance.calls.tracker import CallTracker
from appliance.recordings import spool_files
from appliance.recordings.live import record_code
from appliance.vocabulary import RecordingMode

VALUES = {
    "rendered_by": "test",
    "dir": "/var/lib/appliance/asterisk",
    "module_dir": "/usr/lib/m",
    "user": "asterisk",
    "group": "asterisk",
    "noload": NOLOAD,
    "ami_host": "127.0.0.1",
    "ami_port": 5038,
    "ami_username": "appliance",
    "ami_secret": "s3cret",
    "record_code": record_code("s3cret"),
    "routes_file": "/var/lib/appliance/asterisk/routes/extensions_routes.conf",
    "mixmonitor": "/run/r/L${FILTER(0-9.,${CHANNEL(linkedid)})}.raw,D,"
    "/bin/touch /run/r/L${FILTER(0-9.,${CHANNEL(linkedid)})}.done",
    "cdr_fields": tuple(cdr.FIELDS.values()),
    "agi_host": "127.0.0.1",
    "agi_port": 573,
    "ami_events": AMI_EVENTS,
    "rtp_start": 10000,
    "rtp_end": 20000,
    "sip_host": "127.0.0.1",
    "sip_port": 5060,
    "inbound_context": "appliance-inbound",
    "pjsip_file": "/var/lib/appliance/asterisk/routes/pjsip_appliance.conf",
    "phones_context": PHONES_CONTEXT,
}
TRUNKS = [
    TrunkView("carrier", "ip", "203.0.113.5", 5060, match=("203.0.113.0/24",)),
    TrunkView("voip", "registration", "sip.example.net", 5060, "acme", "pw"),
]
PHONES = [EndpointView("desk-1", "generated-secret")]


def sections() -> str:
    return pjsip_sections(TRUNKS, PHONES, "appliance-inbound")


TEMPLATE = (templates_dir() / "extensions.conf.j2").read_text()


def classes(manager: str, kind: str) -> set[str]:
    return set(re.search(rf"^{kind} = (.*)$", manager, re.M).group(1).split(","))


def test_ami_is_loopback_only_and_has_no_class_that_runs_commands():
    manager = render_files(VALUES)["manager.conf"]
    assert "bindaddr = 127.0.0.1" in manager
    assert "deny = 0.0.0.0/0.0.0.0" in manager
    assert "permit = 127.0.0.1/255.255.255.255" in manager
    assert classes(manager, "write") == {"call", "reporting", "config"}
    assert classes(manager, "read") == {"call", "system", "user"}


def test_modules_that_run_programs_or_dial_on_their_own_are_not_loaded():
    modules = render_files(VALUES)["modules.conf"]
    for module in ("app_system.so", "func_shell.so", "pbx_spool.so", "app_externalivr.so"):
        assert f"noload => {module}" in modules


def test_trunks_are_identified_by_address_only():
    pjsip = sections()
    assert f'#tryinclude "{VALUES["pjsip_file"]}"' in render_files(VALUES)["pjsip.conf"]
    assert "match = 203.0.113.0/24" in pjsip
    assert "[voip-reg]" in pjsip and "server_uri = sip:sip.example.net:5060" in pjsip
    assert "outbound_auth = voip-auth" in pjsip
    assert pjsip.count("identify_by = ip\n") == 2
    assert pjsip.count("direct_media = no") == 3  # the two trunks and the phone
    assert pjsip.count("context = appliance-inbound") == 2


def test_the_dialplan_includes_the_compiled_routes_and_has_no_outbound_context():
    dialplan = render_files(VALUES)["extensions.conf"]
    assert f'#tryinclude "{VALUES["routes_file"]}"' in dialplan
    assert "AGI(" not in dialplan and "DB(" not in dialplan
    assert "[appliance-outbound" not in dialplan


def test_the_templates_use_exactly_the_shared_names():
    variables = set(re.findall(r"\b(APPLIANCE_[A-Z_]+)\b", TEMPLATE))
    assert variables <= set(var.VARIABLES.values())
    defined = set(re.findall(r"^\[([a-z-]+)\]$", TEMPLATE, re.M)) - {"general", "globals"}
    assert defined == set(var.CONTEXTS)
    events = set(re.findall(r"UserEvent\((\w+),", TEMPLATE))
    assert events == {var.EVENT_CONSENT, var.EVENT_RECORDING}
    modes = set(re.findall(r'"(\w+)"\]\?', TEMPLATE)) & {"always", "never", "on_demand"}
    assert modes == {RecordingMode.ON_DEMAND.value}
    features = render_files(VALUES)["features.conf"]
    assert f"{var.RECORD_FEATURE} => {record_code('s3cret')},self,Gosub({var.RECORD_NOW},s,1)" in (
        features
    )


def test_cdr_columns_are_the_reconciler_s():
    mapping = render_files(VALUES)["cdr_custom.conf"]
    line = next(line for line in mapping.splitlines() if line.startswith("appliance.csv"))
    assert re.findall(r"\$\{CDR\(([^)]*)\)\}", line) == list(cdr.FIELDS.values())
    (written,) = re.findall(r"Set\(CDR\((\w+)\)=(.*)\)$", TEMPLATE, re.M)
    assert written[0] == var.CDR_FIELD and written[1].count("|") == len(var.CDR_PARTS) - 1


def test_every_template_renders():
    files = render_files(VALUES)
    expected = {p.name[:-3] for p in Path(templates_dir()).glob("*.j2")}
    assert set(files) | {"pjsip_appliance.conf"} == expected  # that one is the controller's
    assert "[carrier]" in sections()


def test_ami_event_filter_lets_through_every_event_the_tracker_reads():
    manager = render_files(VALUES)["manager.conf"]
    handled = {name[4:] for name in dir(CallTracker) if name.startswith("_on_")}
    allowed = {e.lower() for e in re.findall(r"^eventfilter = Event: (\w+)$", manager, re.M)}
    assert handled <= allowed
    assert {"fullybooted", "shutdown"} <= allowed


def test_recordings_go_to_the_spool_under_names_the_caller_cannot_choose():
    assert TEMPLATE.count("MixMonitor({{ mixmonitor }})") == 2
    assert spool_files.DIALPLAN_STEM in VALUES["mixmonitor"]
    for forbidden in ("CALLERID", "EXTEN", "DNID", "ARG"):
        assert forbidden not in VALUES["mixmonitor"]


def test_the_record_code_is_unguessable_and_starts_with_a_key_phones_lack():
    code = record_code("s3cret")
    assert code.startswith("D") and len(code) == 8 and code != record_code("other")
    assert set(code[1:]) <= set("0123456789ABC*#")


def test_phones_authenticate_register_once_and_reach_nothing():
    files = render_files(VALUES)
    pjsip = sections()
    phone = pjsip[pjsip.index("[desk-1]") :]
    assert "auth = desk-1-auth" in phone and "password = generated-secret" in phone
    assert f"context = {PHONES_CONTEXT}" in phone and "max_contacts = 1" in phone
    extensions = files["extensions.conf"]
    context = extensions.split(f"[{PHONES_CONTEXT}]\n", 1)[1].split("\n[", 1)[0]
    lines = [line.strip() for line in context.splitlines()]
    assert not [line for line in lines if line.startswith(("exten", "same", "include"))]
