"""Bring your own PBX: the controller attached (asterisk.mode = attached) to a site's own
Asterisk whose config the test wrote (FreePBX's layout, the snippets pasted in). Real
Asterisk, SIPp carrier and phone."""

from __future__ import annotations

import pytest

from tests.harness import Stack, sipp_call
from tests.integration import foreign_pbx

CALLER = "13125550111"


@pytest.fixture(params=["freepbx", "plain"])
def site(request, stack: Stack):
    """The site's Asterisk running its own dialplan, the controller attached to it, and a
    tracking number +12025550123 from Google Ads. Yields the stack and the fingerprint of
    Asterisk's config directory before the controller started."""
    stack.extra_env["APPLIANCE_ASTERISK_MODE"] = "attached"
    stack.appliance("number", "add", foreign_pbx.TRACKED, "--source", "Google Ads")
    foreign_pbx.write(stack, freepbx=request.param == "freepbx")
    stack.start_asterisk()
    before = foreign_pbx.fingerprint(stack.asterisk_dir_on_host)
    stack.start_controller()
    return stack, before


def test_attached_controller_logs_in_with_the_snippet_s_manager_user(site):
    stack, _ = site
    health = stack.health()
    assert health["checks"]["ami"] is True and stack.counter("ami_logins") == 1
    assert stack.counter("ami_impostors") == 0


def test_agi_track_records_a_call_of_the_site_s_dialplan_and_writes_nothing(site, phone):
    stack, before = site
    phone(calls=2)
    untracked = sipp_call(stack, foreign_pbx.INTERNAL, CALLER, "Jane", talk_ms=200)
    assert untracked.returncode == 0, untracked.output
    tracked = sipp_call(stack, foreign_pbx.TRACKED, CALLER, "Jane Doe", talk_ms=2000)
    assert tracked.returncode == 0, tracked.output
    (call,) = stack.finished()  # the internal call, ended first, is not the appliance's
    number = stack.query("SELECT id FROM tracking_numbers")[0]["id"]
    assert call["tracking_number_id"] == number
    assert call["source_name"] == "Google Ads"
    assert call["dialled"] == foreign_pbx.TRACKED and call["caller_number"] == CALLER
    assert call["disposition"] == "answered"
    tags = stack.query("SELECT tag, origin FROM call_tags WHERE call_id = ?", call["id"])
    assert [(t["tag"], t["origin"]) for t in tags] == [("first-call", "agi")]  # the example
    assert abs(call["talk_seconds"] - 2.0) < 1.0
    assert stack.counter("agi_answered") >= 1 and stack.counter("agi_refused") == 0
    assert stack.counter("dialplan_reloads") == 0 and stack.counter("pjsip_reloads") == 0
    stack.stop(stack.processes[-1])  # the controller: whatever it would write at exit too
    assert foreign_pbx.fingerprint(stack.asterisk_dir_on_host / "etc") == {
        name[len("etc/") :]: seen for name, seen in before.items() if name.startswith("etc/")
    }
    assert not (stack.asterisk_dir_on_host / "routes").exists()


def test_doctor_checks_the_ami_login_and_the_fastagi_port_when_attached(site):
    stack, _ = site
    report = stack.appliance("doctor", check=False).stdout
    assert "[  ok] AMI login: appliance@127.0.0.1" in report
    assert "[  ok] FastAGI:" in report
    assert "Asterisk config" not in report and "routes" not in report
    assert "attached calls are tracked, not recorded" in report
