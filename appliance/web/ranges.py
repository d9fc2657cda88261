"""HTTP Range requests as RFC 9110 (section 14) has them, for one byte range.

A Range header the server cannot use (not bytes, malformed, a range that ends before it starts,
several ranges) is ignored: the whole body is sent with 200. A well-formed range that lies
wholly outside the body, or asks for the last 0 bytes, is unsatisfiable: 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


@dataclass(frozen=True)
class Whole:
    """Send everything (no Range, or one that is ignored)."""


@dataclass(frozen=True)
class Part:
    start: int
    stop: int  # exclusive


@dataclass(frozen=True)
class Unsatisfiable:
    """416, with Content-Range: bytes */total."""


Wanted = Whole | Part | Unsatisfiable


def wanted(header: str | None, total: int) -> Wanted:
    if header is None:
        return Whole()
    match = RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return Whole()
    first, last = match.groups()
    if not first and not last:
        return Whole()
    if not first:  # the last n bytes
        suffix = int(last)
        if suffix == 0 or total == 0:
            return Unsatisfiable()
        return Part(max(0, total - suffix), total)
    start = int(first)
    if last and int(last) < start:
        return Whole()
    if start >= total:
        return Unsatisfiable()
    stop = total if not last else min(int(last) + 1, total)
    return Part(start, stop)
