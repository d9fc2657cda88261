"""Which connections a listener takes: caps per client network and in all, pure."""

from __future__ import annotations

import pytest

from appliance.admission import Admission, within_budget
from appliance.web.listener import Quieted


def test_one_network_gets_its_share_and_the_others_theirs():
    admission = Admission(total=10, per_network=3)
    assert [admission.admit("198.51.100.0/24") for _ in range(4)] == [True, True, True, False]
    assert admission.admit("203.0.113.0/24")
    assert admission.refused == 1 and admission.count == 4 and admission.networks() == 2
    admission.release("198.51.100.0/24")
    assert admission.admit("198.51.100.0/24")  # a slot given back is taken again


def test_the_total_holds_for_everyone_even_uncapped_networks():
    admission = Admission(total=4, per_network=2)
    assert all(admission.admit("proxy", capped=False) for _ in range(4))  # no network cap
    assert not admission.admit("203.0.113.0/24")
    assert not admission.admit("proxy", capped=False)
    assert admission.refused == 2


def test_a_slot_is_given_back_once_only():
    admission = Admission(total=4, per_network=2)
    admission.admit("a")
    admission.release("a")
    with pytest.raises(ValueError):
        admission.release("a")
    assert admission.count == 0 and admission.networks() == 0


@pytest.mark.parametrize(("total", "per_network"), [(0, 1), (1, 0), (-1, -1)])
def test_caps_below_one_are_refused(total, per_network):
    with pytest.raises(ValueError):
        Admission(total, per_network)


@pytest.mark.parametrize(
    ("wanted", "descriptors", "reserve", "cap"),
    [(4096, 16384, 256, 4096), (4096, 1024, 256, 768), (512, 1024, 1024, 1), (10, 0, 5, 1)],
)
def test_a_cap_never_takes_the_descriptors_the_rest_of_the_process_needs(
    wanted, descriptors, reserve, cap
):
    assert within_budget(wanted, descriptors, reserve) == cap


def test_a_log_line_is_let_through_once_per_period_and_counts_the_rest(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("appliance.web.listener.time.monotonic", lambda: clock[0])
    quiet = Quieted(every=10)
    assert quiet.due() == 0
    assert [quiet.due() for _ in range(500)] == [None] * 500
    clock[0] += 10
    assert quiet.due() == 500
    assert quiet.due() is None
