from appliance.asterisk.registrations import Registrations, server_key


def test_servers_are_keyed_without_scheme_params_or_case():
    assert server_key("sip:Sip.Example.net:5060;transport=udp") == "sip.example.net:5060"
    assert server_key("sip:sip.example.net") == "sip.example.net:5060"
    assert server_key("sip:acme@10.0.0.1:5070") == "10.0.0.1:5070"


def test_only_pjsip_registry_events_count_and_the_last_state_wins():
    found = Registrations()
    found.on_event(
        {"Event": "Registry", "ChannelType": "IAX2", "Domain": "x", "Status": "Rejected"}
    )
    found.on_event({"Event": "Hangup", "Domain": "sip:10.0.0.1", "Status": "Registered"})
    assert found.state_of("10.0.0.1", 5060) is None
    event = {"Event": "Registry", "ChannelType": "PJSIP", "Domain": "sip:10.0.0.1:5060"}
    found.on_event({**event, "Status": "Rejected", "Cause": "403 Forbidden"})
    assert found.state_of("10.0.0.1", 5060).status == "Rejected"
    found.on_event({**event, "Status": "Registered"})
    state = found.state_of("10.0.0.1", 5060)
    assert state.status == "Registered" and state.cause == ""
