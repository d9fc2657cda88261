"""Spool file names: built from a linkedid, parsed back, and nothing else accepted."""

import json
from pathlib import Path

import pytest

from appliance.recordings import spool_files
from appliance.recordings.spool_files import (
    DIALPLAN_STEM,
    MAX_NAME,
    SpoolName,
    done_name,
    is_linkedid,
    linkedid_of,
    parse,
    raw_name,
)

HOSTILE_DIR = Path("/work/shared/hostile")
CORPUS = [
    value
    for values in json.loads((HOSTILE_DIR / "strings.json").read_text()).values()
    for value in values
]
INVALID_UTF8 = (HOSTILE_DIR / "invalid-utf8.bin").read_bytes()


def asterisk_filter(value: str) -> str:
    """What ${FILTER(0-9.,...)} leaves of a value: its ASCII digits and dots."""
    return "".join(c for c in value if c in "0123456789.")


@pytest.mark.parametrize("linkedid", ["1732870000.12", "0.0", "1" * 20 + "." + "9" * 10])
def test_names_round_trip(linkedid):
    assert raw_name(linkedid) == f"L{linkedid}.raw"
    assert done_name(linkedid) == f"L{linkedid}.done"
    assert parse(raw_name(linkedid)) == SpoolName(linkedid, "raw")
    assert parse(done_name(linkedid)) == SpoolName(linkedid, "done")
    assert linkedid_of(raw_name(linkedid)) == linkedid
    assert linkedid_of(done_name(linkedid)) is None  # a marker is not a recording
    assert len(done_name(linkedid)) <= MAX_NAME < 255


def test_the_dialplan_stem_gives_the_same_names():
    assert DIALPLAN_STEM == "L${FILTER(0-9.,${CHANNEL(linkedid)})}"
    linkedid = "1732870000.12"
    rendered = DIALPLAN_STEM.replace("${FILTER(0-9.,${CHANNEL(linkedid)})}", linkedid)
    assert rendered + spool_files.RAW_SUFFIX == raw_name(linkedid)
    assert rendered + spool_files.DONE_SUFFIX == done_name(linkedid)


HOSTILE_NAMES = [
    "",
    "L.raw",
    "L1.raw",
    "L.1.raw",
    "L1..2.raw",
    "L1.2.3.raw",
    "L-1.2.raw",
    "L+1.2.raw",
    "L 1.2.raw",
    " L1.2.raw",
    "L1.2.raw ",
    "L1.2.raw\n",
    "L1.2.raw\x00",
    "L1\x00.2.raw",
    "l1.2.raw",
    "L1.2.RAW",
    "L1.2.raw.partial",
    "L1.2.raw~",
    ".L1.2.raw",
    "L1.2",
    "L1.2.done.raw",
    "L1.2.rawdone",
    "L1.2/raw",
    "../L1.2.raw",
    "L1.2.raw/..",
    "L1.2.raw/../../etc/passwd",
    "L../../1.2.raw",
    "..",
    ".",
    "L..raw",
    "L1.2.raw\\..\\x",
    "/L1.2.raw",
    "0123456789abcdef0123456789abcdef.raw",  # the old <call id>.raw form
    "L" + "1" * 21 + ".2.raw",
    "L1." + "2" * 11 + ".raw",
    "L" + "1" * 100_000 + ".2.raw",
    "L١٧٣٢.١٢.raw",  # noqa: RUF001 - Arabic-Indic digits, on purpose
    "L１７３２.１２.raw",  # noqa: RUF001 - fullwidth digits, on purpose
    "L1732٫12.raw",  # noqa: RUF001 - Arabic decimal separator, on purpose
    "L1732。12.raw",
    "L1732.12.raw\u200b",
    "\u202eL1732.12.raw",
    "L1732.12\u0301.raw",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES + CORPUS)
def test_anything_else_is_not_a_spool_name(name):
    assert parse(name) is None
    assert linkedid_of(name) is None


@pytest.mark.parametrize("value", CORPUS)
def test_hostile_strings_wrapped_as_names_are_refused(value):
    names = [f"L{value}.raw", f"L{value}.done", f"{value}.raw"]
    if value:  # (the corpus's empty string would leave L1.2.raw, a real name)
        names += [f"{value}L1.2.raw", f"L1.2{value}.raw", f"L1.2.raw{value}"]
    for name in names:
        assert parse(name) is None


# RUF001: the Arabic-Indic digits are on purpose
@pytest.mark.parametrize("value", CORPUS + HOSTILE_NAMES + ["1.2\n", "1.2\x00", "١.٢"])  # noqa: RUF001
def test_only_linkedids_make_names(value):
    assert not is_linkedid(value)
    with pytest.raises(ValueError):
        raw_name(value)
    with pytest.raises(ValueError):
        done_name(value)


@pytest.mark.parametrize("value", [None, 1.2, b"1.2", ["1.2"]])
def test_non_strings_are_neither_linkedids_nor_names(value):
    assert not is_linkedid(value)
    assert parse(value) is None
    with pytest.raises(ValueError):
        raw_name(value)


def test_undecodable_bytes_in_a_name_are_refused():
    # os.listdir / os.scandir hand out such names with surrogate escapes
    for name in (
        INVALID_UTF8.decode("utf-8", "surrogateescape"),
        ("L1732." + INVALID_UTF8.decode("utf-8", "surrogateescape") + ".raw"),
        b"L17\xff32.12.raw".decode("utf-8", "surrogateescape"),
    ):
        assert parse(name) is None


@pytest.mark.parametrize("value", [*CORPUS, "1732870000.12;${SHELL(id)}", "1/2.3", "..1.2"])
def test_what_the_dialplan_writes_for_any_linkedid_is_safe(value):
    """Whatever Asterisk's FILTER leaves of a linkedid, the resulting name either parses back to
    exactly those digits and dot or is ignored; it never names a path elsewhere."""
    name = "L" + asterisk_filter(value) + ".raw"
    assert "/" not in name and "\x00" not in name
    parsed = parse(name)
    assert parsed is None or parsed == SpoolName(asterisk_filter(value), "raw")
