"""The FastAGI boundary: the header block Asterisk (or anyone reaching the port) sends, the
replies to the commands a handler sends, and the commands built from hostile values."""

from __future__ import annotations

import asyncio
import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from appliance.asterisk.agi_protocol import (
    MAX_HEADERS,
    MAX_LINE,
    AgiProtocolError,
    build_request,
    parse_header,
    quote,
    result_code,
    result_value,
    set_variable,
)
from appliance.asterisk.fastagi import FastAgiServer, read_headers
from tests.fuzz.harness import Finding, examples, probe, refuses

NAME = re.compile(r"agi_[A-Za-z0-9_]+")
names = st.from_regex(r"agi_[a-z0-9_]{1,20}", fullmatch=True)
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Zl", "Zp")), max_size=80)
lines = st.one_of(
    st.builds(lambda n, v: f"{n}: {v}", names, values),
    st.text(max_size=120),
    st.builds(lambda n, v, c: f"{n}: {v}{c}{v}", names, values, st.characters(categories=["Cc"])),
)


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in text)


@given(lines)
def test_a_header_line_is_an_agi_header_of_printable_text_or_refused(line):
    with probe("FastAGI header line", AgiProtocolError):
        name, value = parse_header(line)
        if not NAME.fullmatch(name):
            raise Finding(f"accepted the header name {name!r}")
        if not _printable(value):
            raise Finding(f"accepted a value with control characters: {value!r}")


@given(
    st.dictionaries(names, values.map(str.strip), max_size=12),
    st.lists(values.map(str.strip), max_size=5),
)
def test_headers_written_as_asterisk_does_read_back_the_same(extra, args):
    headers = {**extra, "agi_network_script": "route"}
    headers |= {f"agi_arg_{i + 1}": arg for i, arg in enumerate(args)}
    block = "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"
    with probe("FastAGI header block", AgiProtocolError):
        read = asyncio.run(_read(block))
        request = build_request(read)
        if read != headers or request.script != "route" or request.args != tuple(args):
            raise Finding(f"round trip changed the headers: {headers!r} -> {read!r}")


async def _read(data: bytes) -> dict[str, str]:
    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    reader.feed_eof()
    return await read_headers(reader)


blocks = st.one_of(
    st.binary(max_size=600),
    st.lists(lines, max_size=MAX_HEADERS + 3).map(lambda ls: "\n".join(ls).encode() + b"\n\n"),
    st.builds(lambda n: b"agi_x: " + b"a" * n + b"\n\n", st.integers(MAX_LINE - 20, MAX_LINE + 20)),
)


@given(blocks)
def test_any_bytes_give_headers_or_a_refusal_and_never_hang(data):
    with probe("FastAGI header block", AgiProtocolError, ConnectionError, hang=5):
        headers = asyncio.run(_read(data))
        if len(headers) > MAX_HEADERS:
            raise Finding(f"{len(headers)} headers accepted")
        for name, value in headers.items():
            if not NAME.fullmatch(name) or not _printable(value):
                raise Finding(f"accepted {name!r}: {value!r}")
        build_request(headers)


replies = st.one_of(
    st.text(max_size=60),
    st.builds(lambda n, v: f"200 result={n} ({v})", st.integers(-5, 5), st.text(max_size=40)),
    st.builds(lambda d: f"200 result={d}", st.text("0123456789-", min_size=1, max_size=30)),
)


@given(replies)
def test_a_reply_gives_a_code_and_value_or_none(line):
    with probe("FastAGI replies"):
        code, value = result_code(line), result_value(line)
        if code is not None and not isinstance(code, int):
            raise Finding(f"code {code!r}")
        if value is not None and code != 1:
            raise Finding(f"a value {value!r} from a reply whose result is {code!r}")


@given(
    st.integers(-(10**6), 10**6),
    st.text(st.characters(exclude_categories=("Cc", "Zl", "Zp", "Cs")), max_size=60),
)
def test_replies_read_back_what_asterisk_wrote(code, value):
    with probe("FastAGI replies"):
        if result_code(f"200 result={code}") != code:
            raise Finding(f"result code {code} misread")
        if result_value(f"200 result=1 ({value})\n") != value:
            raise Finding(f"value {value!r} misread")


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True), st.text(max_size=80))
def test_commands_built_from_any_value_are_one_line_and_unquote_to_the_printable_text(name, value):
    with probe("FastAGI commands"):
        line = set_variable(name, value)
        body = line[len(f"SET VARIABLE {name} ") : -1]
        if line.count("\n") != 1 or not line.endswith("\n") or not body.isprintable():
            raise Finding(f"command {line!r} is not one printable line")
        unquoted = re.sub(r"\\(.)", r"\1", body[1:-1])
        if quote(value) != body or unquoted != "".join(c for c in value if c.isprintable()):
            raise Finding(f"{value!r} quoted as {body!r}")


@given(st.lists(blocks, min_size=1, max_size=3))
@examples(ci=15)
def test_the_server_survives_any_peer_and_still_answers(payloads):
    """Real sockets: whatever peers send, the server keeps answering a proper request."""
    with probe("FastAGI server", hang=20):
        asyncio.run(_serve(payloads))


async def _serve(payloads: list[bytes]) -> None:
    async def route(request, channel):  # type: ignore[no-untyped-def]
        return {"APPLIANCE_OK": "1"}

    server = FastAgiServer({"route": route}, timeout=2.0, allowed_uids={0}, uid_of=lambda s: 0)
    await server.start("127.0.0.1", 0)
    try:
        for payload in payloads:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            while await reader.read(4096):  # a command, if the garbage was a request
                writer.write(b"200 result=1\n")
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: route\n\n")
        line = await reader.readline()
        if line != b'SET VARIABLE APPLIANCE_OK "1"\n':
            raise Finding(f"a proper request after hostile ones got {line!r}")
        writer.close()
    finally:
        await server.close()


# what the fuzzing found, kept -------------------------------------------------------------
def test_regression_a_header_name_needs_letters_after_agi_():
    for line in ("agi_: x", "agi_\u00b2: x", "agi_\u0661: x"):
        refuses(lambda line=line: parse_header(line), AgiProtocolError)


def test_regression_a_header_value_with_a_control_character_is_refused():
    for line in ("agi_0:\x1b", "agi_callerid: Jane\x00Doe", "agi_x: a\tb"):
        refuses(lambda line=line: parse_header(line), AgiProtocolError)


def test_regression_a_result_of_thousands_of_digits_is_not_a_result():
    assert result_code("200 result=" + "9" * 5000) is None
    assert result_code("200 result=\u0661") is None
