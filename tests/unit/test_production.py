"""What doctor finds wrong on a server installed with scripts/install (pure parts)."""

from pathlib import Path

import pytest

from appliance.production import FileMode, mode_problems, service_problems

UP = ("active", "enabled")


def test_services_up_and_enabled_are_fine():
    states = {"asterisk": UP, "appliance": UP, "appliance-transcriber": UP}
    assert service_problems(states) == []


@pytest.mark.parametrize(("unit", "fatal"), [("asterisk", True), ("appliance", True)])
def test_a_stopped_call_service_is_fatal(unit, fatal):
    (problem,) = service_problems({unit: ("failed", "enabled")})
    assert problem.fatal is fatal
    assert problem.text == f"{unit} is failed"
    assert f"systemctl start {unit}" in problem.fix and f"journalctl -u {unit}" in problem.fix


def test_stopped_workers_degrade_transcription_only():
    (problem,) = service_problems({"appliance-transcriber": ("inactive", "enabled")})
    assert not problem.fatal


def test_a_service_that_would_not_start_at_boot_is_a_warning():
    (problem,) = service_problems({"appliance": ("active", "disabled")})
    assert not problem.fatal and problem.fix == "systemctl enable appliance"


ETC = Path("/etc/appliance")
INI = ETC / "appliance.ini"
DATA = FileMode(Path("/var/lib/appliance"), 997, 0o40750, True)


def config(ini_uid: int = 0, ini_mode: int = 0o100640) -> list[FileMode]:
    return [FileMode(ETC, 0, 0o40750, True), FileMode(INI, ini_uid, ini_mode, False)]


def test_the_installed_modes_are_fine():
    assert mode_problems(config(), DATA, 997) == []


@pytest.mark.parametrize(
    ("uid", "mode", "said"),
    [
        (0, 0o100644, "is readable by others"),
        (0, 0o100660, "is writable by others than root"),
        (0, 0o100642, "is writable by others than root"),
        (997, 0o100640, "is not root's"),
    ],
)
def test_a_config_file_others_can_read_or_change_is_fatal(uid, mode, said):
    (problem,) = mode_problems(config(uid, mode), DATA, 997)
    assert problem.fatal and problem.text == f"{INI} {said}"
    assert problem.fix == f"chown root:appliance {INI}; chmod 0640 {INI}"


def test_a_data_dir_open_to_others_or_owned_by_another_user_is_fatal():
    open_dir = FileMode(DATA.path, 997, 0o40755, True)
    (problem,) = mode_problems(config(), open_dir, 997)
    assert problem.text.endswith("is open to others")
    (problem,) = mode_problems(config(), DATA, 1000)
    assert problem.text.endswith("is not the appliance user's")
    (problem,) = mode_problems(config(), DATA, None)
    assert problem.text == "no user appliance"
