"""The `appliance` command's arguments: any argv ends in an exit code with a message for the
admin, never a traceback. Run in-process on an initialised data dir, output captured."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.cli import build_parser, main
from tests.fuzz.harness import Crash, Finding, examples, probe
from tests.hostile import STRINGS

# serving, long-running or prompting commands, and those that write where their argument
# says (as root, a hostile path could be anywhere): their own tests cover them
LEFT_OUT = ("serve", "track", "backup", "restore", "init", "doctor", "models", "tls",
            "transcribe", "keys", "attach", "recordings export", "person export")  # fmt: skip


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaves(sub, (*path, name))
            return
    yield path, parser


COMMANDS = [
    (path, parser)
    for path, parser in leaves(build_parser())
    if not any(" ".join(path).startswith(left) for left in LEFT_OUT)
]
words = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
    st.sampled_from([s for s in STRINGS if "\x00" not in s]),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "+12025550123",
            "--",
            "-",
            "--help",
            "agency",
            "owner",
            "Default",
            "2024-01-01",
            "2024-13-45",
            "nan",
            "x" * 5000,
        ]
    ),
)


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    path, parser = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    positionals = [a for a in parser._actions if not a.option_strings]
    argv += [draw(words) for _ in range(draw(st.integers(0, len(positionals) + 1)))]
    options = [a for a in parser._actions if a.option_strings and "--help" not in a.option_strings
               and "--password-prompt" not in a.option_strings]  # fmt: skip
    for action in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        argv.append(draw(st.sampled_from(action.option_strings)))
        if action.nargs != 0:
            argv.append(
                draw(
                    st.sampled_from(action.choices)
                    if action.choices and draw(st.booleans())
                    else words
                )
            )  # type: ignore[arg-type]
    if draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))), draw(words))
    return argv


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env |= {
        "APPLIANCE_PATHS_DATA_DIR": str(base / "data"),
        "APPLIANCE_ASTERISK_ROOT": str(base / "root"),
    }
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    cwd = os.getcwd()
    try:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert main(["init"]) == 0, err.getvalue()
        os.chdir(base)
        yield base
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


@given(argvs())
@examples(ci=100)
def test_any_arguments_end_in_an_exit_code_with_a_message_never_a_traceback(
    data_dir, monkeypatch_module, argv
):
    out, err = io.StringIO(), io.StringIO()
    with probe("CLI arguments", hang=60):
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                sys.stdin = io.StringIO("")
                code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
        except Finding:
            raise
        except Exception as exc:
            raise Crash(f"appliance {argv!r}: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.stdin = sys.__stdin__
        if code != 0 and not (err.getvalue() + out.getvalue()).strip():
            raise Finding(f"appliance {argv!r} exited {code} without a message")
        if "Traceback" in err.getvalue():
            raise Finding(f"appliance {argv!r} printed a traceback")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[None]:
    """A typed secret, as an admin at the prompt would give it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(getpass, "getpass", lambda prompt="": "correct horse battery staple")
        yield
