"""Names of the files in the recording spool. Pure: strings in, strings out, no I/O.

Every recording is named after its call's Asterisk linkedid (digits, a dot, digits): MixMonitor
writes `L<linkedid>.raw` and, once the file is complete, touches `L<linkedid>.done`. The
dialplan builds the same stem with DIALPLAN_STEM, which keeps only digits and dots of the
linkedid, so a name this module does not parse back was not written by the appliance's
dialplan and is never sealed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PREFIX = "L"
RAW_SUFFIX = ".raw"
DONE_SUFFIX = ".done"

# The file stem as the dialplan writes it (asterisk-config templates render from this).
DIALPLAN_STEM = "L${FILTER(0-9.,${CHANNEL(linkedid)})}"

# An Asterisk uniqueid/linkedid: epoch seconds, a dot, a sequence number. ASCII digits only
# ([0-9], not \d, which also matches other scripts' digits); fullmatch, so no trailing newline.
_LINKEDID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}", re.ASCII)
_NAME = re.compile(r"L([0-9]{1,20}\.[0-9]{1,10})\.(raw|done)", re.ASCII)
MAX_NAME = len(PREFIX) + 20 + 1 + 10 + len(DONE_SUFFIX)

Kind = Literal["raw", "done"]


@dataclass(frozen=True)
class SpoolName:
    linkedid: str
    kind: Kind  # "raw": the recording; "done": its completion marker


def is_linkedid(value: object) -> bool:
    return isinstance(value, str) and _LINKEDID.fullmatch(value) is not None


def raw_name(linkedid: str) -> str:
    """`L<linkedid>.raw`; ValueError for anything that is not a linkedid."""
    return PREFIX + _checked(linkedid) + RAW_SUFFIX


def done_name(linkedid: str) -> str:
    """`L<linkedid>.done`; ValueError for anything that is not a linkedid."""
    return PREFIX + _checked(linkedid) + DONE_SUFFIX


def parse(name: str) -> SpoolName | None:
    """The linkedid and kind of a spool file name; None for any other name."""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        return None
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    kind: Kind = "raw" if match.group(2) == "raw" else "done"
    return SpoolName(match.group(1), kind)


def linkedid_of(name: str) -> str | None:
    """The linkedid of a recording's file name (`L<linkedid>.raw`); None for anything else."""
    parsed = parse(name)
    return parsed.linkedid if parsed is not None and parsed.kind == "raw" else None


def _checked(linkedid: str) -> str:
    if not is_linkedid(linkedid):
        raise ValueError(f"not an Asterisk linkedid: {linkedid!r:.60}")
    return linkedid
