"""Asterisk's own CDRs (cdr_custom CSV) turned into call outcomes, for reconciliation. Pure.

FIELDS is the one list of columns: asterisk-config/cdr_custom.conf.j2 is rendered from it. A
call with several legs or several dial attempts has several rows with the same linkedid.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.calls import variables as var
from appliance.calls.model import parse_id
from appliance.calls.outcome import CallOutcome

# column name -> the CDR variable Asterisk writes into it
FIELDS = {
    "linkedid": "linkedid",
    "uniqueid": "uniqueid",
    "channel": "channel",
    "appliance": var.CDR_FIELD,  # the parts of var.CDR_PARTS, set by the hangup handler
    "src": "src",
    "clid": "clid",
    "dstchannel": "dstchannel",
    "lastapp": "lastapp",
    "lastdata": "lastdata",
    "start": "start,u",
    "answer": "answer,u",
    "end": "end,u",
    "disposition": "disposition",
}
COLUMNS = tuple(FIELDS)
_DISPOSITIONS = {
    "ANSWERED": "answered",
    "BUSY": "busy",
    "NO ANSWER": "no_answer",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
_CLID_NAME = re.compile(r'^"(.*)"\s*<')


@dataclass(frozen=True)
class CdrRow:
    linkedid: str
    uniqueid: str
    channel: str
    dnid: str
    number: str
    route: str
    after_hours: str
    src: str
    clid: str
    dstchannel: str
    lastapp: str
    lastdata: str
    start: float | None
    answer: float | None
    end: float | None
    disposition: str
    cause: str
    hangup_source: str


def _epoch(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


def parse(text: str) -> tuple[list[CdrRow], int]:
    """Rows of the CSV, and how many lines were malformed (skipped)."""
    rows, bad = [], 0
    for fields in csv.reader(io.StringIO(text)):
        if len(fields) != len(COLUMNS) or not fields[0]:
            bad += 1
            continue
        values = dict(zip(COLUMNS, fields, strict=True))
        times = {key: _epoch(values.pop(key)) for key in ("start", "answer", "end")}
        parts = values.pop("appliance").split("|", len(var.CDR_PARTS) - 1)
        tagged = dict(zip(var.CDR_PARTS, parts + [""] * len(var.CDR_PARTS), strict=False))
        rows.append(CdrRow(**values, **times, **tagged))  # type: ignore[arg-type]
    return rows, bad


def _dial_target(lastdata: str) -> str | None:
    dial = lastdata.split(",", 1)[0]
    if "&" in dial or not dial.startswith("PJSIP/"):
        return None
    return dial.removeprefix("PJSIP/")


def hangup_party(rows: list[CdrRow], inbound: CdrRow, disposition: str) -> str:
    """Who hung up, as the live tracker says it: the caller (their own channel), the callee
    (another channel, or a busy destination), or the system (the dialplan ended the call)."""
    source = next((r.hangup_source for r in rows if r.hangup_source), "")
    if source == inbound.channel:
        return "caller"
    if disposition == "busy" or (source and not source.startswith("dialplan/")):
        return "callee"
    return "system"


def outcome(rows: list[CdrRow]) -> CallOutcome:
    """One call from its CDR rows."""
    rows = sorted(rows, key=lambda r: (r.end or 0, r.start or 0))
    inbound = next((r for r in rows if r.uniqueid == r.linkedid), rows[0])
    answered_rows = [r for r in rows if r.disposition == "ANSWERED" and r.answer]
    answered = min((r.answer for r in answered_rows if r.answer), default=None)
    dials = [r for r in rows if r.lastapp == "Dial"]
    last = rows[-1]
    disposition = (
        "answered" if answered is not None else _DISPOSITIONS.get(last.disposition, "failed")
    )
    starts = [r.start for r in rows if r.start]
    ends = [r.end for r in rows if r.end]
    name = _CLID_NAME.match(inbound.clid)
    cause = next((r.cause for r in rows if r.cause.isascii() and r.cause.isdigit()), "")
    return CallOutcome(
        linkedid=inbound.linkedid,
        dialled=next((r.dnid for r in rows if r.dnid), ""),
        caller_number=inbound.src,
        caller_name=name.group(1) if name else "",
        started=min(starts) if starts else 0.0,
        ended=max(ends) if ends else 0.0,
        answered=answered,
        ring_started=min(starts) if dials and starts else None,
        disposition=disposition,
        hangup_cause=int(cause) if cause else None,
        hangup_party=hangup_party(rows, inbound, disposition),
        answered_by=_dial_target(answered_rows[0].lastdata) if answered_rows else None,
        number_id=next((i for r in rows if (i := parse_id(r.number))), None),
        route_id=next((i for r in rows if (i := parse_id(r.route))), None),
        after_hours=any(r.after_hours == "yes" for r in rows),
        reconciled=True,
    )


def outcomes(rows: Iterable[CdrRow]) -> list[CallOutcome]:
    grouped: dict[str, list[CdrRow]] = defaultdict(list)
    for row in rows:
        grouped[row.linkedid].append(row)
    return [outcome(group) for group in grouped.values()]
