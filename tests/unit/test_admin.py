import pytest
from sqlalchemy import select

from appliance import admin
from appliance.db.engine import session_factory
from appliance.db.models import Account, Route, TrackingNumber
from appliance.numbers import InvalidNumber
from appliance.secrets import SecretBox
from tests.made_once import migrated_sqlite


@pytest.fixture
def session(tmp_path):
    engine = migrated_sqlite(tmp_path / "t.db")
    with session_factory(engine).begin() as s:
        yield s
    engine.dispose()


@pytest.fixture
def box():
    return SecretBox(b"k" * 32)


def test_default_account_is_an_agency_with_client_sub_accounts(session):
    agency = admin.default_account(session)
    assert admin.default_account(session).id == agency.id
    client = admin.add_account(session, "Dental clinic", None)
    assert client.parent_id == agency.id
    with pytest.raises(admin.AdminError, match="cannot have sub-accounts"):
        admin.add_account(session, "Nested", client.id)


def test_users_are_validated(session):
    admin.add_user(session, "ops@example.com", "a-long-password", "admin")
    with pytest.raises(admin.AdminError, match="already exists"):
        admin.add_user(session, "ops@example.com", "a-long-password", "admin")
    with pytest.raises(admin.AdminError, match="at least 12"):
        admin.add_user(session, "short", "short", "analyst")
    with pytest.raises(admin.AdminError, match="role"):
        admin.add_user(session, "x", "a-long-password", "root")
    with pytest.raises(admin.AdminError, match="may only use"):
        admin.add_user(session, "<script>", "a-long-password", "analyst")


def test_trunk_password_is_sealed_and_views_unseal_it(session, box):
    request = admin.TrunkRequest("voip", "registration", "sip.example.net", 5060, "acme", "pw-1")
    trunk = admin.add_trunk(session, box, request)
    assert "pw-1" not in (trunk.password_sealed or "")
    (view,) = admin.trunk_views(session, box)
    assert view.password == "pw-1" and view.match == ("sip.example.net",)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (admin.TrunkRequest("Bad Name", "ip", "h"), "trunk name"),
        (admin.TrunkRequest("t", "sip", "h"), "kind"),
        (admin.TrunkRequest("t", "ip", "h;x"), "host"),
        (admin.TrunkRequest("t", "ip", "h", 0), "port"),
        (admin.TrunkRequest("t", "registration", "h"), "needs a username"),
        (admin.TrunkRequest("t", "registration", "h", 5060, "u", "p\n[evil]"), "newlines"),
        (admin.TrunkRequest("t", "ip", "h", match=["not a net!"]), "not an address"),
    ],
)
def test_trunk_input_that_could_break_the_config_is_refused(session, box, request_, message):
    with pytest.raises(admin.AdminError, match=message):
        admin.add_trunk(session, box, request_)


def test_routes_and_numbers(session, box):
    admin.add_trunk(session, box, admin.TrunkRequest("carrier", "ip", "127.0.0.1"))
    route = admin.add_route(
        session,
        admin.RouteRequest(
            "Front desk",
            forward_to=["202-555-0199"],
            trunk="carrier",
            endpoints=["desk-1"],
            ring_timeout=25,
            whisper="beep",
        ),
    )
    assert [(t.kind, t.value) for t in route.targets] == [
        ("number", "+12025550199"),
        ("endpoint", "desk-1"),
    ]
    number = admin.add_number(
        session,
        admin.NumberRequest(
            "(202) 555-0123", label="Flyer", source="Google Ads", route="Front desk"
        ),
    )
    assert number.e164 == "+12025550123"
    assert session.get(Route, number.route_id).ring_timeout == 25
    with pytest.raises(admin.AdminError, match="already exists"):
        admin.add_number(session, admin.NumberRequest("+12025550123"))
    with pytest.raises(InvalidNumber):
        admin.add_number(session, admin.NumberRequest("12345"))
    with pytest.raises(admin.AdminError, match="no route 'Nope'"):
        admin.add_number(session, admin.NumberRequest("+12025550124", route="Nope"))
    assert session.scalar(select(TrackingNumber.e164)) == "+12025550123"
    assert session.scalar(select(Account.name)) == "Agency"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (admin.RouteRequest("r"), "at least one"),
        (admin.RouteRequest("r", forward_to=["+12025550199"]), "existing trunk"),
        (admin.RouteRequest("r", endpoints=["a b"]), "not a SIP endpoint"),
        (admin.RouteRequest("r", endpoints=["a"], ring_timeout=0), "ring timeout"),
        (admin.RouteRequest("r", endpoints=["a"], whisper="../x"), "not a sound name"),
        (admin.RouteRequest("r", endpoints=["a"], timezone="Nowhere/X"), "not a time zone"),
        (admin.RouteRequest("r", endpoints=["a"], hours="someday"), "is not like"),
        (admin.RouteRequest("r", endpoints=["a"], hours="mon 09:00-10:00"), "after-hours"),
        (admin.RouteRequest("r", endpoints=["a"], after_hours="missing"), "no route 'missing'"),
    ],
)
def test_bad_routes_are_refused(session, request_, message):
    with pytest.raises(admin.AdminError, match=message):
        admin.add_route(session, request_)


def test_only_one_default_route(session):
    admin.add_route(session, admin.RouteRequest("a", endpoints=["a"], default=True))
    admin.add_route(session, admin.RouteRequest("b", endpoints=["b"], default=True))
    defaults = session.scalars(select(Route.name).where(Route.is_default)).all()
    assert defaults == ["b"]
