"""The number pool of dynamic number insertion: least recently used first, sticky visitors,
holds that end, exhaustion that recycles the oldest visitor and says so."""

from appliance.attribution.pool import Holder, Pool


def test_new_visitors_get_the_least_recently_used_free_number_and_keep_it():
    pool = Pool(["+1", "+2", "+3"], hold=60)
    assert pool.request("a", 0).number == "+1"
    assert pool.request("b", 1).number == "+2"
    assert pool.request("a", 2).number == "+1"  # sticky
    assert pool.heartbeat("a", 50) and pool.in_use(55) == 2
    assert pool.in_use(62) == 1  # b's hold ended 60 s after its last request
    assert pool.request("c", 63).number == "+3"  # never used before: least recently used
    assert pool.request("d", 64).number == "+2"  # then the one b let go
    assert not pool.heartbeat("b", 65)  # b has none any more and must ask again


def test_an_exhausted_pool_recycles_the_oldest_visitor_and_counts_it():
    pool = Pool(["+1", "+2"], hold=600)
    pool.request("a", 0)
    pool.request("b", 10)
    pool.heartbeat("a", 20)  # now b is the oldest
    allocation = pool.request("c", 30)
    assert (allocation.number, allocation.recycled) == ("+2", True)
    assert pool.exhausted == 1 and pool.in_use(31) == 2
    assert pool.holder("+2", 15) == Holder("b", "held")
    assert pool.holder("+2", 40) == Holder("c", "ambiguous")


def test_a_call_is_attributed_to_the_holder_then_or_just_before():
    pool = Pool(["+1"], hold=60)
    pool.request("a", 0)
    assert pool.holder("+1", 30) == Holder("a", "held")
    assert pool.holder("+1", 100) == Holder("a", "after")  # hold ended at 60; grace 300
    assert pool.holder("+1", 500) is None
    assert pool.holder("+9", 30) is None
    assert Pool([], hold=60).request("a", 0) is None
