"""The FastAGI wire format, as pure functions: parse the request headers, format commands."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MAX_LINE = 2048
MAX_HEADERS = 128
_NAME = re.compile(r"agi_[A-Za-z0-9_]+")
_ARG = re.compile(r"agi_arg_(\d+)$")
_RESULT = re.compile(r"^200 result=(-?[0-9]{1,18})(?![0-9])")  # bounded: int() of any size
_VALUE = re.compile(r"^200 result=1 \((.*)\)$")


class AgiProtocolError(ValueError):
    """The peer sent something that is not a FastAGI request."""


@dataclass(frozen=True)
class AgiRequest:
    """The headers Asterisk sends before the first command, with the script and its arguments."""

    script: str
    headers: dict[str, str]
    args: tuple[str, ...] = field(default=())

    def get(self, name: str, default: str = "") -> str:
        value = self.headers.get(f"agi_{name}", default)
        return default if value == "unknown" else value


def parse_header(line: str) -> tuple[str, str]:
    """One 'agi_name: value' line; raise AgiProtocolError for anything else, a control
    character in the value included (Asterisk sends none; values reach logs and records)."""
    name, sep, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _NAME.fullmatch(name):
        raise AgiProtocolError(f"not an AGI header: {line[:80]!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise AgiProtocolError(f"header {name} has control characters")
    return name, value


def build_request(headers: dict[str, str]) -> AgiRequest:
    """Turn the header block into a request; the script is the URL path without host or query."""
    if "agi_network_script" not in headers:
        raise AgiProtocolError("no agi_network_script header")
    script = headers["agi_network_script"].split("?", 1)[0].strip("/")
    numbered = sorted(
        (int(m.group(1)), value) for key, value in headers.items() if (m := _ARG.match(key))
    )
    return AgiRequest(script=script, headers=headers, args=tuple(value for _, value in numbered))


def quote(value: str) -> str:
    """Quote a value for an AGI command: no control characters, quotes and backslashes escaped."""
    clean = "".join(ch for ch in value if ch.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"bad channel variable name {name!r}")
    return f"SET VARIABLE {name} {quote(value)}\n"


def result_code(line: str) -> int | None:
    """The result of a '200 result=N' reply, or None for an error reply."""
    match = _RESULT.match(line)
    return int(match.group(1)) if match else None


def get_full_variable(expression: str) -> str:
    """GET FULL VARIABLE: Asterisk evaluates `expression` (e.g. ${CHANNEL(linkedid)})."""
    return f"GET FULL VARIABLE {quote(expression)}\n"


def result_value(line: str) -> str | None:
    """The value of a '200 result=1 (value)' reply; None when unset ('200 result=0') or an error."""
    match = _VALUE.match(line.rstrip("\r\n"))
    return match.group(1) if match else None
