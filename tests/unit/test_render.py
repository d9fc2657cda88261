import re
from pathlib import Path

from appliance.asterisk.render import AMI_EVENTS, TrunkView, render_files, templates_dir
from appliance.calls import variables
from appliance.calls.tracker import CallTracker

VALUES = {
    "rendered_by": "test",
    "dir": "/var/lib/appliance/asterisk",
    "module_dir": "/usr/lib/m",
    "user": "asterisk",
    "group": "asterisk",
    "noload": ["chan_iax2.so"],
    "ami_host": "127.0.0.1",
    "ami_port": 5038,
    "ami_username": "appliance",
    "ami_secret": "s3cret",
    "agi_host": "127.0.0.1",
    "agi_port": 4573,
    "ami_events": AMI_EVENTS,
    "rtp_start": 10000,
    "spool_dir": "/run/appliance-recordings",
    "rtp_end": 20000,
    "sip_host": "127.0.0.1",
    "sip_port": 5060,
    "inbound_context": "appliance-inbound",
    "trunks": [
        TrunkView("carrier", "ip", "203.0.113.5", 5060, match=("203.0.113.0/24",)),
        TrunkView("voip", "registration", "sip.example.net", 5060, "acme", "pw"),
    ],
}


def test_ami_is_loopback_only_with_least_privilege():
    manager = render_files(VALUES)["manager.conf"]
    assert "bindaddr = 127.0.0.1" in manager
    assert "deny = 0.0.0.0/0.0.0.0" in manager
    assert "permit = 127.0.0.1/255.255.255.255" in manager
    write = re.search(r"^write = (.*)$", manager, re.M).group(1).split(",")
    read = re.search(r"^read = (.*)$", manager, re.M).group(1).split(",")
    assert set(write) == {"system", "call", "reporting"}
    assert set(read) == {"call", "system", "user"}


def test_trunks_of_both_kinds():
    pjsip = render_files(VALUES)["pjsip.conf"]
    assert "match = 203.0.113.0/24" in pjsip
    assert "[voip-reg]" in pjsip and "server_uri = sip:sip.example.net:5060" in pjsip
    assert "outbound_auth = voip-auth" in pjsip
    assert pjsip.count("direct_media = no") == 2
    assert pjsip.count("context = appliance-inbound") == 2


def test_inbound_context_asks_fastagi_and_has_a_fallback():
    dialplan = render_files(VALUES)["extensions.conf"]
    assert "APPLIANCE_AGI = agi://127.0.0.1:4573" in dialplan
    assert "AGI(${APPLIANCE_AGI}/inbound,${APPLIANCE_DNID},${CHANNEL(linkedid)})" in dialplan
    assert "DB(appliance_fallback/" in dialplan
    assert "[appliance-outbound" not in dialplan


def test_dialplan_uses_the_variables_the_controller_sets():
    template = (templates_dir() / "extensions.conf.j2").read_text()
    for name in variables.ALL.values():
        assert "${" + name + "}" in template, name
    used = set(re.findall(r"\$\{(APPLIANCE_[A-Z_]+)\}", template)) - {"APPLIANCE_DIAL_"}
    assert used <= set(variables.ALL.values()) | {"APPLIANCE_AGI"}


def test_every_template_renders():
    files = render_files(VALUES)
    expected = {p.name[:-3] for p in Path(templates_dir()).glob("*.j2")}
    assert set(files) == expected


def test_ami_event_filter_lets_through_every_event_the_tracker_reads():
    manager = render_files(VALUES)["manager.conf"]
    handled = {name[4:] for name in dir(CallTracker) if name.startswith("_on_")}
    allowed = {e.lower() for e in re.findall(r"^eventfilter = Event: (\w+)$", manager, re.M)}
    assert handled <= allowed
    assert {"fullybooted", "shutdown"} <= allowed


def test_recordings_go_to_the_spool_under_ids_the_caller_cannot_choose():
    dialplan = render_files(VALUES)["extensions.conf"]
    assert "APPLIANCE_SPOOL = /run/appliance-recordings" in dialplan
    fallback, routed = re.findall(r"MixMonitor\((.*)\)$", dialplan, re.M)
    assert "${FILTER(0-9a-f,${APPLIANCE_CALL_ID})}.raw,D," in routed
    assert "L${FILTER(0-9.,${CHANNEL(linkedid)})}.raw,D," in fallback
    for command in (routed, fallback):
        assert "CALLERID" not in command and "EXTEN" not in command and "DNID" not in command
