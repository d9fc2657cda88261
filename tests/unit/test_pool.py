"""The number pool of dynamic number insertion: least recently used first, sticky sessions,
holds that end, exhaustion that recycles the oldest session and says so."""

from appliance.attribution.pool import Allocation, Pool


def test_new_sessions_get_the_least_recently_used_free_number_and_keep_it():
    pool = Pool(["+1", "+2", "+3"], hold=60)
    assert pool.request("a", 0) == Allocation("+1", new=True)
    assert pool.request("b", 1) == Allocation("+2", new=True)
    assert pool.request("a", 2) == Allocation("+1", new=False)  # sticky
    assert pool.heartbeat("a", 50) == "+1" and pool.in_use(55) == 2
    assert pool.in_use(62) == 1  # b's hold ended 60 s after its last request
    assert pool.request("c", 63).number == "+3"  # never used before: least recently used
    assert pool.request("d", 64).number == "+2"  # then the one b let go
    assert pool.heartbeat("b", 65) is None  # b has none any more and must ask again


def test_an_exhausted_pool_recycles_the_oldest_session_and_counts_it():
    pool = Pool(["+1", "+2"], hold=600)
    pool.request("a", 0)
    pool.request("b", 10)
    pool.heartbeat("a", 20)  # now b is the oldest
    allocation = pool.request("c", 30)
    assert allocation == Allocation("+2", new=True, recycled=True, evicted="b")
    assert pool.exhausted == 1 and pool.in_use(31) == 2
    assert pool.heartbeat("b", 32) is None
    assert Pool([], hold=60).request("a", 0) is None


def test_holds_kept_before_a_restart_resume():
    pool = Pool(["+1", "+2", "+3"], hold=60)
    assert pool.resume("older", "+1", 5) and pool.resume("old", "+2", 10)
    assert not pool.resume("gone", "+9", 10)  # no longer in the pool
    assert not pool.resume("twice", "+2", 10)
    assert pool.request("new", 20).number == "+3"
    assert pool.request("old", 21) == Allocation("+2", new=False)
    assert pool.in_use(66) == 2  # 'older' (last seen 5) ended at 65
