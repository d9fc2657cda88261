"""Log retention for Asterisk's CDR files: reconciliation deletes each moved-aside file once
its calls are in the database, so only files of calls it could not finish linger; their lines
older than `privacy.log_days` go. The live file Asterisk appends to is never touched."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from appliance.calls import cdr
from appliance.calls.reconcile import CDR_FILE

_TIMES = [cdr.COLUMNS.index(name) for name in ("start", "answer", "end")]


def line_time(line: str, fallback: float) -> float:
    """When a CDR line was written: its latest time, else (a malformed line) `fallback`."""
    fields = next(csv.reader(io.StringIO(line)), [])
    if len(fields) != len(cdr.COLUMNS):
        return fallback
    times = []
    for index in _TIMES:
        try:
            times.append(float(fields[index]))
        except ValueError:
            continue
    return max(times, default=fallback)


def keep_newer(text: str, cutoff: float, fallback: float) -> tuple[str, int]:
    """The lines of `text` written at or after `cutoff` (epoch seconds), and how many went."""
    kept, dropped = [], 0
    for line in text.splitlines(keepends=True):
        if line.strip() and line_time(line, fallback) < cutoff:
            dropped += 1
        else:
            kept.append(line)
    return "".join(kept), dropped


def prune(cdr_dir: Path, cutoff: float, dry_run: bool = False) -> int:
    """Drop the old lines of the moved-aside CDR files; how many lines went."""
    dropped = 0
    for path in sorted(cdr_dir.glob(f"{CDR_FILE}.*")):
        if path.is_symlink() or not path.is_file():
            continue
        seen = path.stat()
        kept, gone = keep_newer(path.read_text("utf-8", "replace"), cutoff, seen.st_mtime)
        dropped += gone
        if dry_run or not gone:
            continue
        if not kept.strip():
            path.unlink(missing_ok=True)
            continue
        fresh = path.with_name(f".{path.name}.kept")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, seen.st_mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(kept)
        os.replace(fresh, path)
    return dropped
