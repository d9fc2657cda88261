"""The number pool of dynamic number insertion: least recently used first, sticky sessions,
holds that end, exhaustion that takes from the network holding the most and says so."""

import random

from appliance.attribution.pool import Allocation, Pool


def test_new_sessions_get_the_least_recently_used_free_number_and_keep_it():
    pool = Pool(["+1", "+2", "+3"], hold=60)
    assert pool.request("a", "A", 0) == Allocation("+1", new=True)
    assert pool.request("b", "B", 1) == Allocation("+2", new=True)
    assert pool.request("a", "A", 2) == Allocation("+1", new=False)  # sticky
    assert pool.heartbeat("a", "A", 50) == "+1" and pool.in_use(55) == 2
    assert pool.in_use(62) == 1  # b's hold ended 60 s after its last request
    assert pool.request("c", "C", 63).number == "+3"  # never used before: least recently used
    assert pool.request("d", "D", 64).number == "+2"  # then the one b let go
    assert pool.heartbeat("b", "B", 65) is None  # b has none any more and must ask again


def test_an_exhausted_pool_recycles_the_oldest_session_and_counts_it():
    pool = Pool(["+1", "+2"], hold=600)
    pool.request("a", "A", 0)
    pool.request("b", "B", 10)
    pool.heartbeat("a", "A", 20)  # now b is the oldest
    allocation = pool.request("c", "C", 30)
    assert allocation == Allocation("+2", new=True, recycled=True, evicted="b")
    assert pool.exhausted == 1 and pool.in_use(31) == 2
    assert pool.heartbeat("b", "B", 32) is None
    assert Pool([], hold=60).request("a", "A", 0) is None


def test_a_full_pool_takes_from_the_network_holding_most_never_from_a_lone_visitor():
    pool = Pool(["+1", "+2", "+3", "+4", "+5"], hold=10_000)
    mine = pool.request("visitor", "home", 0).number  # seen longest ago of all, from now on
    for i, network in enumerate(["A", "A", "B", "B"]):
        pool.request(f"{network}{i}", network, 1 + i)
    taken = pool.request("c", "C", 10)
    assert taken.evicted == "A0"  # A and B hold two each; A's oldest was seen longest ago
    assert pool.request("A0", "A", 11).evicted == "B2"  # now B holds the most
    # three networks taking numbers back in turn, in any order, for a long time: they hold
    # four numbers between them, so one always holds two, and the lone visitor keeps its own
    rng = random.Random(7)
    attackers = [("A0", "A"), ("A1", "A"), ("B2", "B"), ("B3", "B"), ("c", "C"), ("c2", "C")]
    for now in range(12, 2000):
        session, network = rng.choice(attackers)
        allocation = pool.request(session, network, now)
        assert allocation is not None and allocation.evicted != "visitor"
        assert allocation.number != mine
    assert pool.number_of("visitor", 2000) == mine


def test_between_networks_holding_as_many_the_one_seen_longest_ago_gives_way():
    pool = Pool(["+1", "+2", "+3", "+4"], hold=600)
    pool.request("a1", "A", 0)
    pool.request("b1", "B", 1)
    pool.request("a2", "A", 2)
    pool.request("b2", "B", 3)
    pool.heartbeat("a1", "A", 4)  # A's oldest is now a2 (2), B's is b1 (1)
    assert pool.request("c", "C", 5).evicted == "b1"
    pool.heartbeat("b2", "B", 6)
    assert pool.request("d", "D", 7).evicted == "a2"  # A holds the most now
    lone = Pool(["+1", "+2"], hold=600)  # every network holds one: the oldest of all
    lone.request("x", "X", 0)
    lone.request("y", "Y", 1)
    assert lone.request("z", "Z", 2).evicted == "x"


def test_number_of_answers_without_extending_the_hold():
    pool = Pool(["+1"], hold=60)
    pool.request("a", "A", 0)
    assert pool.number_of("a", 50) == "+1" and pool.number_of("b", 50) is None
    assert pool.number_of("a", 61) is None  # never extended: it ended 60 s after the request


def test_holds_kept_before_a_restart_resume():
    pool = Pool(["+1", "+2", "+3"], hold=60)
    assert pool.resume("older", "+1", 5, "?older") and pool.resume("old", "+2", 10, "?old")
    assert not pool.resume("gone", "+9", 10, "?gone")  # no longer in the pool
    assert not pool.resume("twice", "+2", 10, "?twice")
    assert not pool.resume("old", "+3", 10, "?old")  # one hold a session
    assert pool.request("new", "N", 20).number == "+3"
    assert pool.request("old", "N", 21) == Allocation("+2", new=False)
    assert pool.in_use(66) == 2  # 'older' (last seen 5) ended at 65
    # the resumed hold now counts as its network's: N holds two and gives way first
    assert set(pool.networks) == {"N"} and pool.counts == {2: {"N": None}}
    pool.request("lone", "L", 67)
    assert pool.request("late", "M", 68).evicted == "new"
