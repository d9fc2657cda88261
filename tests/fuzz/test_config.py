"""The config files and environment layers: any INI text, drop-ins and environment give a
Config that passed validation or ConfigError, never another exception; a number that is not
finite is never accepted."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.config import ENV_PREFIX, ConfigError, iter_settings, load
from tests.fuzz.harness import Finding, probe, refuses

SETTINGS = [(section, key) for section, key, _ in iter_settings()]
raw_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "65536",
            "80",
            "nan",
            "inf",
            "-inf",
            "1e309",
            "NaN",
            "true",
            "off",
            "/",
            "/tmp/x",
            "127.0.0.1",
            "::1",
            "{data_dir}",
            "file:/nonexistent",
            "env:NOPE",
            "a{4294967296}",
            "(",
            "9" * 5000,
            "\x00",
            "/a/../b",
        ]
    ),
    st.integers().map(str),
    st.floats().map(repr),
)
pairs = st.tuples(
    st.sampled_from(SETTINGS) | st.tuples(st.text(max_size=8), st.text(max_size=8)), raw_values
)


def ini(items: list[tuple[tuple[str, str], str]]) -> str:
    lines = []
    for (section, key), value in items:
        lines += [f"[{section}]", f"{key} = {value}"]
    return "\n".join(lines) + "\n"


ini_texts = st.one_of(
    st.lists(pairs, max_size=8).map(ini),
    st.text(max_size=200),
    st.lists(pairs, max_size=4).map(ini).map(lambda t: t.replace("\n", "\n  ", 1)),
)
environments = st.dictionaries(
    st.sampled_from(SETTINGS).map(lambda sk: f"{ENV_PREFIX}{sk[0].upper()}_{sk[1].upper()}"),
    raw_values.map(lambda v: v.replace("\x00", "")),
    max_size=4,
)


def _check(config: object) -> None:
    for section in dataclasses.fields(config):  # type: ignore[arg-type]
        values = getattr(config, section.name)
        if not dataclasses.is_dataclass(values):
            continue
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise Finding(f"{section.name}.{f.name} = {value!r} accepted")


@given(ini_texts, st.lists(ini_texts, max_size=2), environments, st.binary(max_size=40))
def test_any_files_and_environment_give_a_valid_config_or_config_error(text, dropins, env, raw):
    with tempfile.TemporaryDirectory() as base, probe("config files", ConfigError):
        path = Path(base) / "appliance.ini"
        path.write_text(text, "utf-8", errors="surrogatepass") if raw[
            :1
        ] != b"\xff" else path.write_bytes(raw)
        if dropins:
            (Path(base) / "appliance.ini.d").mkdir()
        for i, dropin in enumerate(dropins):
            (Path(base) / "appliance.ini.d" / f"{i}.ini").write_text(
                dropin, "utf-8", errors="surrogatepass"
            )
        _check(load(path, {**env, f"{ENV_PREFIX}PATHS_DATA_DIR": base}))


@given(st.sampled_from(SETTINGS), raw_values)
def test_any_one_value_of_any_setting_is_taken_or_refused_by_name(setting, value):
    section, key = setting
    with tempfile.TemporaryDirectory() as base, probe("config files", ConfigError):
        path = Path(base) / "appliance.ini"
        path.write_text(f"[{section}]\n{key} = {value}\n", "utf-8", errors="surrogatepass")
        try:
            _check(load(path, {f"{ENV_PREFIX}PATHS_DATA_DIR": base}))
        except ConfigError as exc:
            if not str(exc).strip() or "\n" in str(exc).strip():
                raise Finding(f"message {str(exc)!r} is not one line") from None
            raise


# what the fuzzing found, kept -------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309"])
def test_regression_a_number_that_is_not_finite_is_refused(tmp_path, value):
    path = tmp_path / "appliance.ini"
    path.write_text(f"[destinations]\ntimeout = {value}\n")
    refuses(lambda: load(path, {}), ConfigError)


def test_regression_a_directory_or_the_root_as_config_file_is_refused(tmp_path):
    refuses(lambda: load(tmp_path, {}), ConfigError)
    refuses(lambda: load("/", {}), ConfigError)


def test_regression_a_nul_in_a_path_is_refused(tmp_path):
    path = tmp_path / "appliance.ini"
    path.write_text("[paths]\ndata_dir = /tmp/a\x00b\n")
    refuses(lambda: load(path, {}), ConfigError)
    refuses(lambda: load(str(tmp_path / "a\x00b.ini"), {}), ConfigError)


def test_regression_a_repetition_too_large_in_a_redaction_pattern_is_refused(tmp_path):
    path = tmp_path / "appliance.ini"
    path.write_text("[transcription]\nredact_patterns = a{4294967296}\n")
    refuses(lambda: load(path, {f"{ENV_PREFIX}PATHS_DATA_DIR": os.fspath(tmp_path)}), ConfigError)
