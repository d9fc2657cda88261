from pathlib import Path

import pytest

from appliance import config
from appliance.config import ConfigError, load, render_ini, resolve_secret

REPO = Path(__file__).resolve().parents[2]


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILE", tmp_path / "absent.ini")
    c = load(environ={})
    assert c.data_dir == tmp_path / "data"
    assert c.database.url == f"sqlite:///{tmp_path}/data/appliance.db"
    assert c.ami.host == "127.0.0.1" and c.agi.host == "127.0.0.1"
    assert c.asterisk.dir == f"{tmp_path}/data/asterisk"


def test_file_dropins_and_environment_layer_in_order(tmp_path):
    ini = tmp_path / "appliance.ini"
    ini.write_text("[paths]\ndata_dir = /var/lib/appliance\n[http]\nport = 9000\ntls = no\n")
    (tmp_path / "appliance.ini.d").mkdir()
    (tmp_path / "appliance.ini.d" / "10-agi.ini").write_text("[agi]\nport = 600\n")
    c = load(ini, environ={"APPLIANCE_HTTP_PORT": "9443"})
    assert c.http.port == 9443
    assert c.http.tls is False
    assert c.agi.port == 600
    assert c.database.url == "sqlite:////var/lib/appliance/appliance.db"
    assert c.source == str(ini)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[http]\nport = eighty\n", "http.port: 'eighty' is not an integer"),
        ("[http]\nport = 70000\n", "http.port: 70000 is not a TCP/UDP port"),
        ("[http]\ntls = maybe\n", "http.tls: 'maybe' is not true or false"),
        ("[http]\nprot = 1\n", "http.prot: unknown key"),
        ("[htp]\nport = 1\n", "[htp]: unknown section"),
        ("port = 1\n", "is not valid INI"),
        ("[log]\nlevel = loud\n", "log.level: 'loud' is not debug"),
        ("[asterisk]\ndir = relative\n", "asterisk.dir: 'relative' must be an absolute path"),
    ],
)
def test_bad_values_name_the_key_in_one_line(tmp_path, text, message):
    ini = tmp_path / "a.ini"
    ini.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(ini, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.ini", environ={})


def test_environment_values_are_validated_too():
    with pytest.raises(ConfigError, match=r"agi.port: 'x' is not an integer \(from environment\)"):
        load(environ={"APPLIANCE_AGI_PORT": "x"})


def test_secrets_inline_file_and_env(tmp_path):
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    assert resolve_secret("k", "inline") == "inline"
    assert resolve_secret("k", f"file:{secret}") == "from-file"
    assert resolve_secret("k", "env:S", environ={"S": "from-env"}) == "from-env"
    with pytest.raises(ConfigError, match=r"k: secret file .* does not exist"):
        resolve_secret("k", f"file:{tmp_path}/missing")
    with pytest.raises(ConfigError, match="k: environment variable NOPE is not set"):
        resolve_secret("k", "env:NOPE", environ={})


def test_rendered_config_lists_every_key_and_hides_inline_secrets():
    c = load(environ={"APPLIANCE_AMI_SECRET": "hunter2"})
    text = render_ini(c)
    for section, key, _ in config.iter_settings():
        assert f"\n{key} = " in text.split(f"[{section}]")[1]
    assert "hunter2" not in text


def test_every_setting_is_documented_in_the_admin_guide():
    guide = (REPO / "docs" / "admin-guide.md").read_text()
    missing = [f"{s}.{k}" for s, k, _ in config.iter_settings() if f"`{s}.{k}`" not in guide]
    assert not missing, f"undocumented settings: {missing}"


@pytest.mark.parametrize("inside", ["{data}", "{data}/plugins.d", "{data}/../data/x"])
def test_the_plugin_directory_may_not_be_where_the_controller_writes(tmp_path, inside):
    """A plugin file the controller could write would outlive a compromise of it."""
    data = tmp_path / "data"
    environ = {"APPLIANCE_PATHS_DATA_DIR": str(data)}
    with pytest.raises(ConfigError, match=r"plugins\.dir: not inside paths\.data_dir"):
        load(environ=environ | {"APPLIANCE_PLUGINS_DIR": inside.format(data=data)})
    assert load(environ=environ | {"APPLIANCE_PLUGINS_DIR": str(tmp_path / "plugins.d")})
