"""Administrative operations on the core domain, shared by the CLI and (later) the admin UI."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.asterisk.render import TrunkView
from appliance.calls import routing, schedule
from appliance.db.models import (
    Account,
    ApiKey,
    AuditEntry,
    Route,
    RouteTarget,
    Source,
    TrackingNumber,
    Trunk,
    User,
)
from appliance.numbers import to_e164
from appliance.secrets import SecretBox, hash_password, new_token, token_hash
from appliance.vocabulary import RecordingMode, RingStrategy, Role, TargetKind, values

TRUNK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
USERNAME = re.compile(r"[A-Za-z0-9_.@+-]{1,200}")
HOST = re.compile(r"[A-Za-z0-9.-]{1,255}")
ROLES = values(Role)


class AdminError(ValueError):
    """A request an admin made that cannot be carried out; the message says why."""


def default_account(session: Session) -> Account:
    """The agency account, created on first use."""
    account = session.scalar(
        select(Account).where(Account.parent_id.is_(None)).order_by(Account.id)
    )
    if account is None:
        account = Account(name="Agency", timezone="UTC")
        session.add(account)
        session.flush()
    return account


def get_account(session: Session, account_id: int | None) -> Account:
    if account_id is None:
        return default_account(session)
    account = session.get(Account, account_id)
    if account is None:
        raise AdminError(f"no account with id {account_id}")
    return account


def add_account(session: Session, name: str, parent_id: int | None) -> Account:
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("account name must be 1 to 200 characters")
    parent = get_account(session, parent_id)
    if parent.parent_id is not None:
        raise AdminError("client accounts cannot have sub-accounts of their own")
    account = Account(name=name, parent_id=parent.id, timezone=parent.timezone)
    session.add(account)
    session.flush()
    return account


def add_user(
    session: Session, username: str, password: str, role: str, account_id: int | None = None
) -> User:
    if not USERNAME.fullmatch(username):
        raise AdminError(f"username {username[:40]!r} may only use letters, digits and _.@+-")
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 12:
        raise AdminError("password must be at least 12 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AdminError(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        account_id=get_account(session, account_id).id,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class TrunkRequest:
    name: str
    kind: str
    host: str
    port: int = 5060
    username: str | None = None
    password: str | None = None
    match: Sequence[str] = ()


def add_trunk(
    session: Session, box: SecretBox, request: TrunkRequest, account_id: int | None = None
) -> Trunk:
    if not TRUNK_NAME.fullmatch(request.name):
        raise AdminError("trunk name must be lowercase letters, digits, _ or -, up to 40")
    if request.kind not in ("ip", "registration"):
        raise AdminError("trunk kind must be 'ip' or 'registration'")
    if not HOST.fullmatch(request.host):
        raise AdminError(f"trunk host {request.host[:60]!r} is not a host name or address")
    if not 0 < request.port < 65536:
        raise AdminError(f"trunk port {request.port} is not a port")
    if request.kind == "registration" and not (request.username and request.password):
        raise AdminError("a registration trunk needs a username and a password")
    if request.username and not USERNAME.fullmatch(request.username):
        raise AdminError("trunk username may only use letters, digits and _.@+-")
    if request.password and any(ch in request.password for ch in "\r\n;"):
        raise AdminError("trunk password may not contain newlines or ';'")
    match = [_network(m) for m in (request.match or [request.host])]
    if session.scalar(select(Trunk.id).where(Trunk.name == request.name)) is not None:
        raise AdminError(f"trunk {request.name!r} already exists")
    trunk = Trunk(
        name=request.name,
        kind=request.kind,
        host=request.host,
        port=request.port,
        username=request.username,
        password_sealed=box.seal(request.password) if request.password else None,
        match=",".join(match),
        account_id=get_account(session, account_id).id,
    )
    session.add(trunk)
    session.flush()
    return trunk


def _network(text: str) -> str:
    """A trunk's source: an address, a network or a host name; never everyone."""
    text = text.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        if HOST.fullmatch(text):
            return text
        raise AdminError(f"{text[:60]!r} is not an address, network or host name") from None
    if network.prefixlen == 0:
        raise AdminError(
            f"{text!r} would take calls from anywhere as this trunk: give the carrier's "
            "addresses or networks"
        )
    return str(network)


@dataclass(frozen=True)
class RouteRequest:
    name: str
    forward_to: Sequence[str] = ()
    trunk: str | None = None
    endpoints: Sequence[str] = ()
    ring_timeout: int = 30
    strategy: str = RingStrategy.SIMULTANEOUS
    announcement: str | None = None
    whisper: str | None = None
    hours: str | None = None
    timezone: str = "UTC"
    after_hours: str | None = None
    default: bool = False
    recording: str = RecordingMode.NEVER
    consent_prompt: str | None = None
    consent_opt_out: bool = False
    dynamic: bool = False


def add_route(
    session: Session, request: RouteRequest, account_id: int | None = None, region: str = "US"
) -> Route:
    account = get_account(session, account_id)
    name = request.name.strip()
    if not name or len(name) > 120:
        raise AdminError("route name must be 1 to 120 characters")
    if session.scalar(select(Route.id).where(Route.account_id == account.id, Route.name == name)):
        raise AdminError(f"route {name!r} already exists")
    if request.strategy not in values(RingStrategy):
        raise AdminError(f"strategy must be one of {', '.join(values(RingStrategy))}")
    if not 1 <= request.ring_timeout <= 600:
        raise AdminError("ring timeout must be 1 to 600 seconds")
    targets = _targets(session, request, region)
    if not targets:
        raise AdminError("a route needs at least one --forward number or --endpoint")
    if request.recording not in values(RecordingMode):
        raise AdminError(f"recording must be one of {', '.join(values(RecordingMode))}")
    if request.consent_opt_out and not request.consent_prompt:
        raise AdminError("opting out needs a consent prompt to press a key during")
    try:
        routing.sound(request.consent_prompt)
        routing.sound(request.announcement)
        routing.sound(request.whisper)
        schedule.zone(request.timezone)
        if request.hours:
            schedule.parse(request.hours)
    except (routing.InvalidRoute, schedule.InvalidSchedule) as exc:
        raise AdminError(str(exc)) from None
    after_hours = None
    if request.after_hours:
        after_hours = session.scalar(
            select(Route).where(Route.account_id == account.id, Route.name == request.after_hours)
        )
        if after_hours is None:
            raise AdminError(f"no route {request.after_hours!r} for after hours")
    elif request.hours:
        raise AdminError("business hours need an after-hours route (--after-hours NAME)")
    if request.default:
        for other in session.scalars(select(Route).where(Route.is_default)):
            other.is_default = False
    route = Route(
        account_id=account.id,
        name=name,
        targets=targets,
        ring_timeout=request.ring_timeout,
        strategy=request.strategy,
        announcement=request.announcement or None,
        whisper=request.whisper or None,
        hours=request.hours or None,
        timezone=request.timezone,
        after_hours_route_id=after_hours.id if after_hours else None,
        is_default=request.default,
        recording=request.recording,
        consent_prompt=request.consent_prompt or None,
        consent_opt_out=request.consent_opt_out,
        dynamic=request.dynamic,
    )
    session.add(route)
    session.flush()
    return route


@dataclass(frozen=True)
class NumberRequest:
    number: str
    label: str | None = None
    source: str | None = None
    route: str | None = None


def add_number(
    session: Session, request: NumberRequest, account_id: int | None = None, region: str = "US"
) -> TrackingNumber:
    account = get_account(session, account_id)
    e164 = to_e164(request.number, region)
    if session.scalar(select(TrackingNumber.id).where(TrackingNumber.e164 == e164)):
        raise AdminError(f"tracking number {e164} already exists")
    number = TrackingNumber(e164=e164, account_id=account.id, label=request.label)
    if request.source:
        number.source_id = _source(session, account.id, request.source).id
    if request.route:
        route = session.scalar(
            select(Route).where(Route.account_id == account.id, Route.name == request.route)
        )
        if route is None:
            raise AdminError(f"no route {request.route!r} (add it with 'appliance route add')")
        number.route_id = route.id
    session.add(number)
    session.flush()
    return number


def _source(session: Session, account_id: int, name: str) -> Source:
    name = name.strip()[:120]
    source = session.scalar(
        select(Source).where(Source.account_id == account_id, Source.name == name)
    )
    if source is None:
        source = Source(account_id=account_id, name=name)
        session.add(source)
        session.flush()
    return source


def _targets(session: Session, request: RouteRequest, region: str) -> list[RouteTarget]:
    targets: list[RouteTarget] = []
    if request.forward_to:
        trunk = session.scalar(select(Trunk).where(Trunk.name == (request.trunk or "")))
        if trunk is None:
            raise AdminError(f"forwarding needs an existing trunk (got {request.trunk!r})")
        for raw in request.forward_to:
            targets.append(
                RouteTarget(
                    kind=TargetKind.NUMBER,
                    value=to_e164(raw, region),
                    trunk_id=trunk.id,
                    position=len(targets),
                )
            )
    for endpoint in request.endpoints:
        if not ENDPOINT_NAME.fullmatch(endpoint):
            raise AdminError(f"{endpoint[:60]!r} is not a SIP endpoint name")
        targets.append(RouteTarget(kind=TargetKind.ENDPOINT, value=endpoint, position=len(targets)))
    return targets


def trunk_views(session: Session, box: SecretBox) -> list[TrunkView]:
    """The trunks as the pjsip template needs them, passwords unsealed."""
    return [
        TrunkView(
            name=t.name,
            kind=t.kind,
            host=t.host,
            port=t.port,
            username=t.username or "",
            password=box.open(t.password_sealed) if t.password_sealed else "",
            match=tuple(m for m in (t.match or "").split(",") if m),
        )
        for t in session.scalars(select(Trunk).order_by(Trunk.name))
    ]


def add_api_key(session: Session, username: str) -> str:
    """A new API token for a user; returned once, stored only as a hash."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AdminError(f"no user {username[:60]!r}")
    token = new_token()
    session.add(ApiKey(user_id=user.id, token_hash=token_hash(token)))
    session.add(AuditEntry(actor="cli", action="apikey.add", subject=username))
    return token


def set_recording_limits(
    session: Session, account_id: int | None, quota_mb: int | None, days: int | None, when_full: str
) -> Account:
    account = get_account(session, account_id)
    if quota_mb is not None and quota_mb < 1:
        raise AdminError("the quota must be at least 1 MB")
    if days is not None and days < 1:
        raise AdminError("recordings must be kept at least 1 day")
    if when_full not in ("delete_oldest", "pause"):
        raise AdminError("when full: 'delete_oldest' or 'pause'")
    account.recording_quota_mb = quota_mb
    account.recording_days = days
    account.recording_when_full = when_full
    session.add(
        AuditEntry(
            actor="cli",
            action="account.limits",
            subject=str(account.id),
            detail=f"quota_mb={quota_mb} days={days} when_full={when_full}",
        )
    )
    return account
