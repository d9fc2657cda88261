"""Tags, score adjustments and notes integrators put on calls, in a real SQLite database: each
value is checked once for every way in (AGI, plugins), bounded, and bad input is one clear
line with nothing written."""

import pytest
from sqlalchemy import select

from appliance.calls import annotations as notes
from appliance.db.engine import session_factory
from appliance.db.models import Call, CallNote, CallTag
from tests.hostile import STRINGS
from tests.made_once import migrated_sqlite


@pytest.fixture
def sessions(tmp_path):
    engine = migrated_sqlite(tmp_path / "notes.db")
    factory = session_factory(engine)
    with factory.begin() as session:
        session.add(Call(id="c" * 32, linkedid="1.1", dialled="+12025550123"))
    yield factory
    engine.dispose()


CALL = "c" * 32


def test_tags_are_added_once_and_read_back_sorted(sessions):
    with sessions.begin() as session:
        assert notes.add_tags(session, CALL, ["Hot-Lead", "vip"], "agi") == ["hot-lead", "vip"]
        assert notes.add_tags(session, CALL, notes.clean_tags("vip, spanish"), "plugin:x") == [
            "hot-lead",
            "spanish",
            "vip",
        ]
    with sessions() as session:
        assert notes.of_call(session, CALL).tags == ("hot-lead", "spanish", "vip")


def test_score_adjustments_add_up_within_bounds(sessions):
    with sessions.begin() as session:
        assert notes.adjust_score(session, CALL, "+60") == 60
        assert notes.adjust_score(session, CALL, 70) == 100
        assert notes.adjust_score(session, CALL, "-100") == 0
    assert notes.effective_score(None, 0) is None
    assert notes.effective_score(None, 15) == 15
    assert notes.effective_score(90, 30) == 100
    assert notes.effective_score(10, -30) == 0


def test_notes_are_flattened_to_one_printable_line(sessions):
    with sessions.begin() as session:
        notes.add_note(session, CALL, "asked for\r\na quote\x00 today", "agi")
    with sessions() as session:
        assert notes.of_call(session, CALL).notes == (("agi", "asked for a quote today"),)


@pytest.mark.parametrize("raw", STRINGS)
def test_hostile_tags_and_points_are_one_clear_line_and_nothing_is_written(sessions, raw):
    for write in (
        lambda s: notes.add_tags(s, CALL, notes.clean_tags(raw), "agi"),
        lambda s: notes.adjust_score(s, CALL, raw),
    ):
        try:
            with sessions.begin() as session:
                write(session)
        except notes.AnnotationError as refused:
            assert "\n" not in str(refused)
    with sessions() as session:
        for tag in session.scalars(select(CallTag.tag)):
            assert notes.TAG.fullmatch(tag)
        assert -100 <= session.get(Call, CALL).score_adjustment <= 100


def test_limits_and_unknown_calls_are_refused(sessions):
    with sessions.begin() as session:
        for n in range(notes.MAX_NOTES):
            notes.add_note(session, CALL, f"note {n}", "agi")
    with pytest.raises(notes.AnnotationError, match="at most 50 notes"), sessions.begin() as s:
        notes.add_note(s, CALL, "one more", "agi")
    with pytest.raises(notes.AnnotationError, match="no such call"), sessions.begin() as s:
        notes.add_tags(s, "x" * 32, ["a"], "agi")
    with pytest.raises(notes.AnnotationError, match="at most 1000"):
        notes.clean_note("x" * 1001)
    with pytest.raises(ValueError, match="origin"):
        notes.clean_origin("plugin:../../etc")
    with sessions() as session:
        assert session.scalar(select(CallNote).where(CallNote.text == "one more")) is None


def test_a_deleted_call_takes_its_tags_and_notes_with_it(sessions):
    with sessions.begin() as session:
        notes.add_tags(session, CALL, ["vip"], "agi")
        notes.add_note(session, CALL, "call back", "agi")
    with sessions.begin() as session:
        session.delete(session.get(Call, CALL))
    with sessions() as session:
        assert session.scalar(select(CallTag)) is None
        assert session.scalar(select(CallNote)) is None
