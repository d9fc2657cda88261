"""The routes compiled into Asterisk's dialplan: shapes, names and hostile values."""

import re

import pytest

from appliance.calls import variables as var
from appliance.calls.dialplan import Settings, compile_routes
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import RoutePlan, Target
from appliance.vocabulary import RecordingMode, RingStrategy, TargetKind
from tests.hostile import STRINGS

SETTINGS = Settings("appliance-inbound", "agi://127.0.0.1:573")
DESK = (Target(TargetKind.ENDPOINT, "desk-1"),)
NIGHT = RoutePlan(id=2, name="Night", targets=DESK)
OFFICE = RoutePlan(
    id=1,
    name="Office",
    targets=(Target(TargetKind.NUMBER, "+12025550199", "carrier"), *DESK),
    hours="mon-fri 09:00-17:00; sat 22:00-02:00",
    timezone="America/New_York",
    after_hours=NIGHT,
    strategy=RingStrategy.SEQUENTIAL,
    ring_timeout=12,
)
# one line of a context: the header, a first priority, a following one, or a comment
LINE = re.compile(
    r"^(\[[A-Za-z0-9_-]+\]( {2}; [^\n;\\]*)?|exten => \S+,1,.+|"
    r" same => n(\([a-z]+\))?,.+|; .*|)$"
)


def compiled(*numbers: NumberInfo, default: RoutePlan | None = NIGHT, **table) -> str:
    result = compile_routes(RoutingTable(numbers, default, **table), SETTINGS)
    assert all(LINE.match(line) for line in result.text.splitlines()), result.text
    return result.text


def context(text: str, name: str) -> list[str]:
    block = text.split(f"[{name}]", 1)[1].split("\n\n", 1)[0]
    return [
        line.split(",", 2)[2] if "exten =>" in line else line.split(",", 1)[1]
        for line in block.splitlines()[1:]
    ]


def test_every_form_of_a_number_enters_its_route_and_the_rest_the_default():
    text = compiled(NumberInfo(3, 1, "+442071234567", OFFICE))
    push = "Set(CHANNEL(hangup_handler_push)=appliance-hangup,s,1)"
    for form in ("+442071234567", "442071234567", "2071234567", "02071234567"):
        assert f"exten => {form},1,{push}" in text
    assert text.count(" same => n,MSet(APPLIANCE_DNID=+442071234567,APPLIANCE_NUMBER=3)") == 4
    assert text.count("Goto(appliance-entry-1,s,1)") == 4  # Office has hours
    assert "n,MSet(APPLIANCE_DNID=${FILTER(0-9,${EXTEN})},APPLIANCE_NUMBER=0)" in text
    assert " same => n,Goto(appliance-connect-2,s,1)" in text  # Night has none: straight on


def test_without_a_default_route_unknown_numbers_are_unallocated():
    text = compiled(NumberInfo(3, 1, "+12025550123", None), default=None)
    assert text.count("Hangup(1)") == 5  # three forms of the number, and _X. and _+X.
    assert "appliance-entry" not in text and "appliance-connect" not in text


def test_a_national_form_two_numbers_share_is_left_to_the_default():
    one, two = NumberInfo(3, 1, "+12025550123", OFFICE), NumberInfo(4, 1, "+2025550123", NIGHT)
    result = compile_routes(RoutingTable((one, two), NIGHT), SETTINGS)
    assert "2025550123 could be any of" in result.problems[0]
    assert "exten => 2025550123," not in result.text


def test_business_hours_become_goto_if_time_with_the_end_minute_inclusive():
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", OFFICE)), "appliance-entry-1")
    where = "America/New_York?appliance-connect-1,s,1"
    assert steps[0] == f"GotoIfTime(09:00-16:59,mon,*,*,{where})"
    assert f"GotoIfTime(22:00-23:59,sat,*,*,{where})" in steps
    assert f"GotoIfTime(00:00-01:59,sun,*,*,{where})" in steps
    assert steps[-2:] == ["Set(APPLIANCE_AFTER_HOURS=yes)", "Goto(appliance-connect-2,s,1)"]


def test_sequential_route_dials_each_target_in_turn():
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", OFFICE)), "appliance-connect-1")
    assert steps == [
        "MSet(APPLIANCE_ROUTE=1,APPLIANCE_RECORDING=never)",
        "UserEvent(ApplianceRoute,Route: 1,Number: ${APPLIANCE_NUMBER},"
        "Dialled: ${APPLIANCE_DNID},AfterHours: ${APPLIANCE_AFTER_HOURS},Recording: never,"
        "Restricted: ${APPLIANCE_RESTRICTED})",
        "Dial(PJSIP/+12025550199@carrier,12,)",
        'GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)',
        "Dial(PJSIP/desk-1,12,)",
        "Hangup()",
    ]


def test_recording_notice_announcement_and_whisper():
    plan = RoutePlan(
        id=5,
        name="Clinic",
        targets=DESK,
        recording=RecordingMode.ALWAYS,
        consent_prompt="custom/notice",
        consent_opt_out=True,
        announcement="welcome",
        whisper="beep",
    )
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", plan)), "appliance-connect-5")
    assert steps[2:] == [
        "Gosub(appliance-record,s,1(custom/notice,yes,yes))",
        "Playback(welcome)",
        "Dial(PJSIP/desk-1,30,U(appliance-whisper^beep))",
        "Hangup()",
    ]
    on_demand = RoutePlan(id=6, name="Sales", targets=DESK, recording=RecordingMode.ON_DEMAND)
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", on_demand)), "appliance-connect-6")
    assert steps[0] == "MSet(APPLIANCE_ROUTE=6,APPLIANCE_RECORDING=on_demand)"
    assert steps[2:4] == ["Set(DYNAMIC_FEATURES=appliance_record)", "Dial(PJSIP/desk-1,30,)"]
    noticed = RoutePlan(
        id=6, name="Sales", targets=DESK, recording=RecordingMode.ON_DEMAND, consent_prompt="b"
    )
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", noticed)), "appliance-connect-6")
    assert steps[3] == "Gosub(appliance-record,s,1(b,no,no))"  # the notice, no recording yet


def test_a_full_account_records_nothing_until_there_is_room():
    plan = RoutePlan(
        id=5, name="Clinic", targets=DESK, account_id=9, recording=RecordingMode.ALWAYS
    )
    text = compiled(NumberInfo(3, 9, "+12025550123", plan), paused_accounts=frozenset({9}))
    assert "appliance-record," not in text
    assert "MSet(APPLIANCE_ROUTE=5,APPLIANCE_RECORDING=never)" in text


def test_dynamic_route_takes_only_a_complete_answer_naming_a_compiled_route():
    plan = RoutePlan(id=7, name="Hook", targets=DESK, dynamic=True)
    steps = context(compiled(NumberInfo(3, 1, "+12025550123", plan)), "appliance-entry-7")
    target = "appliance-connect-${APPLIANCE_CONNECT},s,1"
    assert steps == [
        "MSet(AGIEXITONHANGUP=yes,TIMEOUT(absolute)=2)",
        "AGI(agi://127.0.0.1:573/dynamic,7,${CHANNEL(linkedid)})",
        "Set(TIMEOUT(absolute)=0)",
        'GotoIf($["${APPLIANCE_READY}" != "1"]?compiled)',
        "Set(APPLIANCE_CONNECT=${FILTER(0-9,${APPLIANCE_CONNECT})})",
        "Set(APPLIANCE_AFTER_HOURS=${FILTER(a-z,${APPLIANCE_AFTER_HOURS})})",
        f"GotoIf($[${{DIALPLAN_EXISTS({target})}}]?{target})",
        "Set(APPLIANCE_AFTER_HOURS=)",
        "Goto(appliance-connect-7,s,1)",
        "Goto(s,compiled)",  # extension T: the controller did not answer in time
    ]
    assert "exten => T,1,Goto(s,compiled)" in compiled(NumberInfo(3, 1, "+12025550123", plan))
    plain = compiled(NumberInfo(3, 1, "+12025550123", OFFICE))
    assert "AGI(" not in plain and "exten => T," not in plain


def test_a_route_that_cannot_be_dialled_refuses_its_calls_and_says_why():
    broken = RoutePlan(id=8, name="Gone", targets=(Target(TargetKind.NUMBER, "+12025550199"),))
    result = compile_routes(RoutingTable((NumberInfo(3, 1, "+12025550123", broken),)), SETTINGS)
    assert context(result.text, "appliance-connect-8") == ["Hangup(34)"]
    assert "route 'Gone': number +12025550199 has no valid trunk" in result.problems[0]


@pytest.mark.parametrize("name", [*STRINGS, "x\n[evil]\nexten => _X.,1,Dial(x)", ";-- y", "\\"])
def test_hostile_route_names_stay_inside_one_comment(name):
    plan = RoutePlan(id=9, name=name, targets=DESK)
    text = compiled(NumberInfo(3, 1, "+12025550123", plan), default=plan)
    comments = [line for line in text.splitlines() if "  ; " in line]
    assert len(comments) == (1 if name else 0) and all(
        ";" not in c.split("  ; ", 1)[-1] for c in comments
    )


def test_names_shared_with_the_templates():
    text = compiled(NumberInfo(3, 1, "+12025550123", OFFICE))
    used = set(re.findall(r"\b(APPLIANCE_[A-Z_]+)\b", text))
    assert used <= set(var.VARIABLES.values())
    called = set(re.findall(r"Gosub\(([a-z-]+),", text)) | {"appliance-hangup"}
    assert called <= set(var.CONTEXTS)
    assert set(re.findall(r"UserEvent\((\w+),", text)) == {var.EVENT_ROUTE}


@pytest.mark.parametrize(
    "bad",
    [
        ("in bound", "agi://127.0.0.1:573"),
        ("x", "agi://127.0.0.1:573,System(id)"),
        ("x)", "agi://127.0.0.1:573"),
        ("x", "agi://127.0.0.1:573", 0),
        ("x", "agi://127.0.0.1:573", float("nan")),
        ("x", "agi://127.0.0.1:573", 61),
    ],
)
def test_settings_rendered_into_the_dialplan_are_checked(bad):
    with pytest.raises(ValueError):
        Settings(*bad)
