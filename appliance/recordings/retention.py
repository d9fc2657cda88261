"""Storage limits per account, as a pure decision: which recordings go, whether recording
pauses, whether to warn the admin. Applied by the retention job (recordings/limits.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

WARN_AT = 0.9  # share of the quota at which the admin is warned


@dataclass(frozen=True)
class Stored:
    call_id: str
    created_at: dt.datetime
    size: int
    held: bool = False  # under a legal hold: neither its age nor the quota removes it


@dataclass(frozen=True)
class Limits:
    quota_bytes: int | None = None
    days: int | None = None
    when_full: str = "delete_oldest"  # or 'pause': keep everything, record nothing new


@dataclass(frozen=True)
class Verdict:
    delete: tuple[str, ...]
    paused: bool
    used_bytes: int
    warn: bool


def judge(recordings: Sequence[Stored], limits: Limits, now: dt.datetime) -> Verdict:
    ordered = sorted(recordings, key=lambda r: r.created_at)
    cutoff = now - dt.timedelta(days=limits.days) if limits.days else None
    delete = [
        r.call_id for r in ordered if cutoff is not None and r.created_at < cutoff and not r.held
    ]
    kept = [r for r in ordered if r.call_id not in set(delete)]
    used = sum(r.size for r in kept)
    paused = False
    if limits.quota_bytes is not None and used > limits.quota_bytes:
        if limits.when_full == "pause":
            paused = True
        else:
            for record in (r for r in kept if not r.held):
                if used <= limits.quota_bytes:
                    break
                delete.append(record.call_id)
                used -= record.size
    warn = paused or (limits.quota_bytes is not None and used >= WARN_AT * limits.quota_bytes)
    return Verdict(delete=tuple(delete), paused=paused, used_bytes=used, warn=warn)
