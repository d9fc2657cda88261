import pytest

from appliance.asterisk.agi_protocol import (
    AgiProtocolError,
    build_request,
    get_full_variable,
    parse_header,
    quote,
    result_code,
    result_value,
    set_variable,
)


def test_request_script_and_arguments():
    request = build_request(
        {
            "agi_network_script": "inbound?x=1",
            "agi_arg_2": "1700000000.1",
            "agi_arg_1": "12025550123",
            "agi_callerid": "unknown",
        }
    )
    assert request.script == "inbound"
    assert request.args == ("12025550123", "1700000000.1")
    assert request.get("callerid") == ""


@pytest.mark.parametrize("line", ["GET / HTTP/1.1", "agi_x", "x_agi: 1", "agi_a b: c"])
def test_non_agi_headers_are_refused(line):
    with pytest.raises(AgiProtocolError):
        parse_header(line)


def test_missing_script_is_refused():
    with pytest.raises(AgiProtocolError):
        build_request({"agi_channel": "PJSIP/x"})


def test_values_are_quoted_and_stripped_of_control_characters():
    assert quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ cd"'
    assert set_variable("APPLIANCE_CONNECT", "7") == 'SET VARIABLE APPLIANCE_CONNECT "7"\n'
    with pytest.raises(ValueError):
        set_variable("BAD NAME", "x")


def test_result_codes():
    assert result_code("200 result=1") == 1
    assert result_code("200 result=-1") == -1
    assert result_code("510 Invalid or unknown command") is None


def test_values_asked_of_the_channel():
    assert get_full_variable("${CHANNEL(linkedid)}") == 'GET FULL VARIABLE "${CHANNEL(linkedid)}"\n'
    assert result_value("200 result=1 (1700000000.1)") == "1700000000.1"
    assert result_value("200 result=1 (a (b) c)\r\n") == "a (b) c"
    assert result_value("200 result=0") is None  # not set
    assert result_value("510 Invalid or unknown command") is None
