"""`appliance restrict`, run as an admin would run it: one line for every refusal."""

import pytest

from tests.hostile import CATEGORIES
from tests.made_once import initialised
from tests.unit.test_cli import run  # noqa: F401 (the fixture)


def test_restrict_add_list_remove_and_their_refusals(run, tmp_path):  # noqa: F811
    initialised(tmp_path / "data")
    added = run("restrict", "add", "1", "(312) 555-0111")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("+13125550111 restricted for account 1")
    listed = run("restrict", "list", "1")
    assert listed.stdout.split("\t")[:2] == ["1", "+13125550111"]
    refusals = [
        (("add", "1", "+1 312 555 0111"), "appliance: +13125550111 is already restricted"),
        (("add", "99", "+13125550112"), "appliance: no account with id 99"),
        (("remove", "1", "+13125550112"), "appliance: +13125550112 is not restricted"),
        *((("add", "1", raw), "appliance: ") for raw in CATEGORIES["dialplan_and_sip"]),
        *((("add", "1", raw), "appliance: ") for raw in CATEGORIES["markup"]),
    ]
    for args, message in refusals:
        refused = run("restrict", *args)
        assert refused.returncode == 2, (args, refused.stdout)
        assert refused.stderr.startswith(message) and refused.stderr.count("\n") == 1, args
    assert run("restrict", "remove", "1", "13125550111").returncode == 0
    assert run("restrict", "list").stdout == ""


@pytest.mark.parametrize("args", [("add", "x", "+13125550111"), ("add", "1")])
def test_bad_arguments_are_refused_by_the_parser(run, args):  # noqa: F811
    assert run("restrict", *args).returncode == 2
