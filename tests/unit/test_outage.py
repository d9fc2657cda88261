from appliance.outage import Outage


def test_an_outage_is_alarmed_once_after_the_grace_and_its_end_is_said():
    watch = Outage("AMI", grace=60)
    assert watch.feed(True, 0) is None
    assert watch.feed(False, 10) is None
    assert watch.feed(False, 69) is None
    assert watch.feed(False, 70) == "ALERT AMI has been down for 60 s"
    assert watch.feed(False, 500) is None  # once
    assert watch.feed(True, 501) == "AMI is back"
    assert watch.feed(True, 502) is None
    assert watch.feed(False, 600) is None  # a blip below the grace is no alarm
    assert watch.feed(True, 610) is None
