"""Administrative operations on the core domain, shared by the CLI and (later) the admin UI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance import accounts, audit
from appliance.access import AGENCY_ROLES, DEFAULT_SCOPES, parse_scopes
from appliance.asterisk.render import EndpointView, TrunkView
from appliance.calls import routing, schedule
from appliance.config import EMAIL
from appliance.db.models import (
    Account,
    ApiKey,
    Endpoint,
    Route,
    RouteTarget,
    Source,
    TrackingNumber,
    Trunk,
    User,
    utcnow,
)
from appliance.numbers import to_e164
from appliance.privacy import retention
from appliance.secrets import SecretBox, hash_password, new_password, new_token, token_hash
from appliance.vocabulary import RecordingMode, RingStrategy, Role, TargetKind, values

TRUNK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
PJSIP_NAME = TRUNK_NAME  # trunks and endpoints share PJSIP's section names
SECTION_SUFFIXES = ("-auth", "-reg", "-identify")  # what the pjsip template adds to a name
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
        account = Account(name="Agency", timezone="UTC", **retention.DEFAULTS)
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


def add_account(
    session: Session, name: str, parent_id: int | None, actor: str = "system"
) -> Account:
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("account name must be 1 to 200 characters")
    parent = get_account(session, parent_id)
    if parent.parent_id is not None:
        raise AdminError("client accounts cannot have sub-accounts of their own")
    account = Account(
        name=name, parent_id=parent.id, timezone=parent.timezone, **retention.DEFAULTS
    )
    session.add(account)
    session.flush()
    audit.record(session, actor, "account.add", str(account.id), detail=name, account_id=parent.id)
    return account


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    account_id: int | None = None,
    actor: str = "system",
    email: str | None = None,
) -> User:
    """A user who must choose a new password at first sign-in."""
    email = email.strip().lower() if email else None
    if email is not None and not EMAIL.fullmatch(email):
        raise AdminError(f"{email[:60]!r} is not an e-mail address")
    if not USERNAME.fullmatch(username):
        raise AdminError(f"username {username[:40]!r} may only use letters, digits and _.@+-")
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}")
    try:
        accounts.check_new_password(username, password)
    except accounts.PasswordRejected as exc:
        raise AdminError(str(exc)) from None
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AdminError(f"user {username!r} already exists")
    account = get_account(session, account_id)
    if account.parent_id is not None and role in AGENCY_ROLES:
        raise AdminError(f"a client account's users may be analysts or client viewers, not {role}s")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        account_id=account.id,
        email=email,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.add", username, detail=f"role={role}", account_id=account.id)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username[:200]))
    if user is None:
        raise AdminError(f"no user {username[:60]!r}")
    return user


def set_email(session: Session, username: str, email: str, actor: str) -> User:
    user = get_user(session, username)
    email = email.strip().lower()
    if email and not EMAIL.fullmatch(email):
        raise AdminError(f"{email[:60]!r} is not an e-mail address")
    before = {"email": user.email}
    user.email = email or None
    audit.record(
        session,
        actor,
        "user.email",
        username,
        detail=audit.change(before, {"email": user.email}),
        account_id=user.account_id,
    )
    return user


def set_user_password(
    session: Session, username: str, password: str, temporary: bool, actor: str
) -> User:
    """An admin sets a password (and unlocks the user); a temporary one must be changed at the
    next sign-in."""
    user = get_user(session, username)
    try:
        accounts.set_password(session, user, password, actor)
    except accounts.PasswordRejected as exc:
        raise AdminError(str(exc)) from None
    user.must_change_password = temporary
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
    session: Session,
    box: SecretBox,
    request: TrunkRequest,
    account_id: int | None = None,
    actor: str = "system",
) -> Trunk:
    _free_pjsip_name(session, request.name, "trunk")
    trunk = Trunk(name=request.name, account_id=get_account(session, account_id).id)
    _apply_trunk(box, trunk, request)
    session.add(trunk)
    session.flush()
    audit.record(
        session,
        actor,
        "trunk.add",
        trunk.name,
        detail=f"{trunk.kind} {trunk.host}:{trunk.port} from {trunk.match}",
        account_id=trunk.account_id,
    )
    return trunk


def edit_trunk(
    session: Session,
    box: SecretBox,
    name: str,
    actor: str,
    host: str | None = None,
    port: int | None = None,
    match: Sequence[str] = (),
    username: str | None = None,
    password: str | None = None,
) -> Trunk:
    """Change where a trunk's carrier is, where its calls come from or how it registers; the
    password stays unless a new one is given."""
    trunk = session.scalar(select(Trunk).where(Trunk.name == name[:60]))
    if trunk is None:
        raise AdminError(f"no trunk {name[:60]!r}")
    before = _trunk_fields(trunk)
    request = TrunkRequest(
        name=trunk.name,
        kind=trunk.kind,
        host=host or trunk.host,
        port=port or trunk.port,
        username=username if username is not None else trunk.username,
        password=password or (box.open(trunk.password_sealed) if trunk.password_sealed else None),
        match=match or (() if host else tuple((trunk.match or "").split(","))),
    )
    _apply_trunk(box, trunk, request)
    detail = audit.change(before, _trunk_fields(trunk)) + ("; new password" if password else "")
    audit.record(session, actor, "trunk.edit", name, detail=detail, account_id=trunk.account_id)
    return trunk


def _trunk_fields(trunk: Trunk) -> dict[str, object]:
    return {"host": trunk.host, "port": trunk.port, "match": trunk.match, "user": trunk.username}


def _apply_trunk(box: SecretBox, trunk: Trunk, request: TrunkRequest) -> None:
    """Check a whole trunk request and write it onto `trunk` (new or being edited)."""
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
    trunk.kind = request.kind
    trunk.host = request.host
    trunk.port = request.port
    trunk.username = request.username
    trunk.password_sealed = box.seal(request.password) if request.password else None
    trunk.match = ",".join(match)


def _free_pjsip_name(session: Session, name: str, kind: str) -> None:
    if not PJSIP_NAME.fullmatch(name) or name.endswith(SECTION_SUFFIXES):
        raise AdminError(
            f"{kind} name must be lowercase letters, digits, _ or -, up to 40, starting with a "
            f"letter and not ending in {', '.join(SECTION_SUFFIXES)}"
        )
    if session.scalar(select(Trunk.id).where(Trunk.name == name)) is not None:
        raise AdminError(f"a trunk {name!r} already exists")
    if session.scalar(select(Endpoint.id).where(Endpoint.name == name)) is not None:
        raise AdminError(f"an endpoint {name!r} already exists")


def add_endpoint(
    session: Session,
    box: SecretBox,
    name: str,
    label: str | None = None,
    account_id: int | None = None,
    actor: str = "system",
) -> tuple[Endpoint, str]:
    """A phone of the appliance with a generated SIP password (returned once, stored sealed)."""
    _free_pjsip_name(session, name, "endpoint")
    if label is not None and len(label) > 120:
        raise AdminError("an endpoint label is at most 120 characters")
    password = new_password() + new_password()
    endpoint = Endpoint(
        name=name,
        label=label.strip() or None if label else None,
        password_sealed=box.seal(password),
        account_id=get_account(session, account_id).id,
    )
    session.add(endpoint)
    session.flush()
    audit.record(session, actor, "endpoint.add", name, account_id=endpoint.account_id)
    return endpoint, password


def endpoints(session: Session) -> list[Endpoint]:
    return list(session.scalars(select(Endpoint).order_by(Endpoint.name)))


def new_endpoint_password(session: Session, box: SecretBox, name: str, actor: str) -> str:
    endpoint = _endpoint(session, name)
    password = new_password() + new_password()
    endpoint.password_sealed = box.seal(password)
    audit.record(session, actor, "endpoint.password", name, account_id=endpoint.account_id)
    return password


def set_endpoint_label(session: Session, name: str, label: str, actor: str) -> Endpoint:
    endpoint = _endpoint(session, name)
    if len(label) > 120:
        raise AdminError("an endpoint label is at most 120 characters")
    before = {"label": endpoint.label}
    endpoint.label = label.strip() or None
    audit.record(
        session,
        actor,
        "endpoint.edit",
        name,
        detail=audit.change(before, {"label": endpoint.label}),
        account_id=endpoint.account_id,
    )
    return endpoint


def remove_endpoint(session: Session, name: str, actor: str) -> None:
    endpoint = _endpoint(session, name)
    using = session.scalars(
        select(Route.name)
        .join(RouteTarget)
        .where(RouteTarget.kind == TargetKind.ENDPOINT, RouteTarget.value == name)
        .distinct()
    ).all()
    if using:
        raise AdminError(f"routes ring endpoint {name!r}: {', '.join(sorted(using))}")
    audit.record(session, actor, "endpoint.remove", name, account_id=endpoint.account_id)
    session.delete(endpoint)


def _endpoint(session: Session, name: str) -> Endpoint:
    endpoint = session.scalar(select(Endpoint).where(Endpoint.name == name[:60]))
    if endpoint is None:
        raise AdminError(f"no endpoint {name[:60]!r}")
    return endpoint


def endpoint_views(session: Session, box: SecretBox) -> list[EndpointView]:
    """The endpoints as the pjsip template needs them, passwords unsealed."""
    return [
        EndpointView(name=e.name, password=box.open(e.password_sealed)) for e in endpoints(session)
    ]


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
    session: Session,
    request: RouteRequest,
    account_id: int | None = None,
    region: str = "US",
    actor: str = "system",
) -> Route:
    account = get_account(session, account_id)
    route = Route(account_id=account.id)
    _apply_route(session, route, request, region)
    session.add(route)
    session.flush()
    targets_text = ", ".join(t.value for t in route.targets)
    audit.record(
        session, actor, "route.add", route.name, detail=f"to {targets_text}", account_id=account.id
    )
    return route


def route_request(session: Session, route: Route) -> RouteRequest:
    """What a route is now, as a request: an edit changes some of it."""
    after = session.get(Route, route.after_hours_route_id) if route.after_hours_route_id else None
    trunk = next((t.trunk.name for t in route.targets if t.trunk is not None), None)
    return RouteRequest(
        name=route.name,
        forward_to=tuple(t.value for t in route.targets if t.kind == TargetKind.NUMBER),
        trunk=trunk,
        endpoints=tuple(t.value for t in route.targets if t.kind == TargetKind.ENDPOINT),
        ring_timeout=route.ring_timeout,
        strategy=route.strategy,
        announcement=route.announcement,
        whisper=route.whisper,
        hours=route.hours,
        timezone=route.timezone,
        after_hours=after.name if after else None,
        default=route.is_default,
        recording=route.recording,
        consent_prompt=route.consent_prompt,
        consent_opt_out=route.consent_opt_out,
        dynamic=route.dynamic,
    )


def edit_route(
    session: Session,
    name: str,
    changes: dict[str, object],
    account_id: int | None = None,
    region: str = "US",
    actor: str = "system",
) -> Route:
    """Change some of a route's settings (the others stay); audited with before and after."""
    route = route_by_name(session, name, account_id)
    before = route_request(session, route)
    unknown = set(changes) - {f.name for f in dataclasses.fields(RouteRequest)}
    if unknown:
        raise AdminError(f"routes have no setting {sorted(unknown)[0]!r}")
    wanted = dataclasses.replace(before, **changes)  # type: ignore[arg-type]
    _apply_route(session, route, wanted, region)
    session.flush()
    audit.record(
        session,
        actor,
        "route.edit",
        route.name,
        detail=audit.change(dataclasses.asdict(before), dataclasses.asdict(wanted)),
        account_id=route.account_id,
    )
    return route


def _apply_route(session: Session, route: Route, request: RouteRequest, region: str) -> None:
    """Check a whole route request and write it onto `route` (a new one or one being edited)."""
    name = _unique_route_name(session, route, request.name)
    _check_ringing(request)
    targets = _targets(session, request, region)
    if not targets:
        raise AdminError("a route needs at least one --forward number or --endpoint")
    _check_call_options(request)
    after_hours = _after_hours_route(session, route, request)
    if request.default:
        for other in session.scalars(select(Route).where(Route.is_default)):
            other.is_default = False
    _write_route(route, request, name, targets, after_hours)


def _unique_route_name(session: Session, route: Route, wanted: str) -> str:
    """The route's name, stripped: 1 to 120 characters, no other route of its account's."""
    name = wanted.strip()
    if not name or len(name) > 120:
        raise AdminError("route name must be 1 to 120 characters")
    same_name = select(Route.id).where(Route.account_id == route.account_id, Route.name == name)
    if route.id is not None:
        same_name = same_name.where(Route.id != route.id)
    if session.scalar(same_name):
        raise AdminError(f"route {name!r} already exists")
    return name


def _check_ringing(request: RouteRequest) -> None:
    if request.strategy not in values(RingStrategy):
        raise AdminError(f"strategy must be one of {', '.join(values(RingStrategy))}")
    if not 1 <= request.ring_timeout <= 600:
        raise AdminError("ring timeout must be 1 to 600 seconds")


def _check_call_options(request: RouteRequest) -> None:
    """Recording, consent, the sounds played and the business hours."""
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


def _after_hours_route(session: Session, route: Route, request: RouteRequest) -> Route | None:
    """The route calls take outside business hours: one of the same account's, not itself;
    business hours need one."""
    if not request.after_hours:
        if request.hours:
            raise AdminError("business hours need an after-hours route (--after-hours NAME)")
        return None
    after_hours = session.scalar(
        select(Route).where(Route.account_id == route.account_id, Route.name == request.after_hours)
    )
    if after_hours is None:
        raise AdminError(f"no route {request.after_hours!r} for after hours")
    if route.id is not None and after_hours.id == route.id:
        raise AdminError("a route cannot be its own after-hours route")
    return after_hours


def _write_route(
    route: Route,
    request: RouteRequest,
    name: str,
    targets: list[RouteTarget],
    after_hours: Route | None,
) -> None:
    route.name = name
    route.targets = targets
    route.ring_timeout = request.ring_timeout
    route.strategy = request.strategy
    route.announcement = request.announcement or None
    route.whisper = request.whisper or None
    route.hours = request.hours or None
    route.timezone = request.timezone
    route.after_hours_route_id = after_hours.id if after_hours else None
    route.is_default = request.default
    route.recording = request.recording
    route.consent_prompt = request.consent_prompt or None
    route.consent_opt_out = request.consent_opt_out
    route.dynamic = request.dynamic


@dataclass(frozen=True)
class NumberRequest:
    number: str
    label: str | None = None
    source: str | None = None
    route: str | None = None


def add_number(
    session: Session,
    request: NumberRequest,
    account_id: int | None = None,
    region: str = "US",
    actor: str = "system",
) -> TrackingNumber:
    account = get_account(session, account_id)
    e164 = to_e164(request.number, region)
    number = session.scalar(select(TrackingNumber).where(TrackingNumber.e164 == e164))
    if number is not None and number.released_at is None:
        raise AdminError(f"tracking number {e164} already exists")
    if number is not None and number.account_id != account.id:
        raise AdminError(f"tracking number {e164} was released by another account")
    if number is None:
        number = TrackingNumber(e164=e164, account_id=account.id)
    number.released_at = None
    number.label = request.label
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
    audit.record(
        session,
        actor,
        "number.add",
        e164,
        detail=f"route={request.route} source={request.source}",
        account_id=account.id,
    )
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


def add_api_key(
    session: Session,
    username: str,
    actor: str,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    days: int | None = None,
    name: str | None = None,
) -> tuple[ApiKey, str]:
    """A new API token for a user; returned once, stored only as a hash. Its scopes narrow what
    the user's role allows; it ends after `days` when given."""
    user = get_user(session, username)
    try:
        scopes = parse_scopes(" ".join(scopes))
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if not scopes:
        raise AdminError("a token needs at least one scope")
    if days is not None and not 1 <= days <= 3650:
        raise AdminError("a token lasts 1 to 3650 days")
    if name is not None and not 0 < len(name.strip()) <= 80:
        raise AdminError("a token name is 1 to 80 characters")
    token = new_token()
    key = ApiKey(
        user_id=user.id,
        token_hash=token_hash(token),
        scopes=" ".join(scopes),
        expires_at=utcnow() + dt.timedelta(days=days) if days else None,
        name=name.strip() if name else None,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "apikey.add",
        username,
        detail=f"token {key.id}: {key.scopes}; expires {key.expires_at or 'never'}",
        account_id=user.account_id,
    )
    return key, token


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, key_id: int, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise AdminError(f"no API token {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "apikey.revoke",
            key.user.username,
            detail=f"token {key.id}",
            account_id=key.user.account_id,
        )
    return key


def set_recording_limits(
    session: Session,
    account_id: int | None,
    quota_mb: int | None,
    days: int | None,
    when_full: str,
    actor: str,
) -> Account:
    account = get_account(session, account_id)
    if quota_mb is not None and quota_mb < 1:
        raise AdminError("the quota must be at least 1 MB")
    if days is not None and days < 1:
        raise AdminError("recordings must be kept at least 1 day")
    if when_full not in ("delete_oldest", "pause"):
        raise AdminError("when full: 'delete_oldest' or 'pause'")
    try:
        retention.change(retention.of(account), recording_days=days)
    except retention.RetentionRefused as exc:
        raise AdminError(str(exc)) from None
    before = _limits(account)
    account.recording_quota_mb = quota_mb
    account.recording_days = days
    account.recording_when_full = when_full
    audit.record(
        session,
        actor,
        "account.limits",
        str(account.id),
        detail=audit.change(before, _limits(account)),
        account_id=account.id,
    )
    return account


def _limits(account: Account) -> dict[str, object]:
    return {
        "quota_mb": account.recording_quota_mb,
        "days": account.recording_days,
        "when_full": account.recording_when_full,
    }


# listing, changing and removing ---------------------------------------------------------------
def users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.account_id, User.username)))


def set_role(session: Session, username: str, role: str, actor: str) -> User:
    user = get_user(session, username)
    if role not in ROLES:
        raise AdminError(f"role must be one of {', '.join(ROLES)}")
    account = get_account(session, user.account_id)
    if account.parent_id is not None and role in AGENCY_ROLES:
        raise AdminError(f"a client account's users may be analysts or client viewers, not {role}s")
    if user.role == "owner" and role != "owner":
        _keep_an_owner(session, user)
    before = user.role
    user.role = role
    audit.record(
        session,
        actor,
        "user.role",
        username,
        detail=audit.change({"role": before}, {"role": role}),
        account_id=user.account_id,
    )
    return user


def remove_user(session: Session, username: str, actor: str) -> None:
    user = get_user(session, username)
    if user.role == "owner":
        _keep_an_owner(session, user)
    audit.record(
        session,
        actor,
        "user.remove",
        username,
        detail=f"role={user.role}",
        account_id=user.account_id,
    )
    session.delete(user)


def _keep_an_owner(session: Session, leaving: User) -> None:
    others = session.scalar(
        select(User.id).where(User.role == "owner", User.id != leaving.id).limit(1)
    )
    if others is None:
        raise AdminError(f"{leaving.username} is the last owner: make someone else owner first")


def trunks(session: Session) -> list[Trunk]:
    return list(session.scalars(select(Trunk).order_by(Trunk.name)))


def remove_trunk(session: Session, name: str, actor: str) -> None:
    trunk = session.scalar(select(Trunk).where(Trunk.name == name))
    if trunk is None:
        raise AdminError(f"no trunk {name[:60]!r}")
    using = session.scalars(
        select(Route.name).join(RouteTarget).where(RouteTarget.trunk_id == trunk.id).distinct()
    ).all()
    if using:
        raise AdminError(f"routes forward over trunk {name!r}: {', '.join(sorted(using))}")
    audit.record(session, actor, "trunk.remove", name, account_id=trunk.account_id)
    session.delete(trunk)


def routes(session: Session) -> list[Route]:
    return list(session.scalars(select(Route).order_by(Route.account_id, Route.name)))


def route_by_name(session: Session, name: str, account_id: int | None) -> Route:
    account = get_account(session, account_id)
    route = session.scalar(select(Route).where(Route.account_id == account.id, Route.name == name))
    if route is None:
        raise AdminError(f"no route {name[:60]!r} in account {account.id}")
    return route


def remove_route(session: Session, name: str, account_id: int | None, actor: str) -> None:
    route = route_by_name(session, name, account_id)
    numbers = session.scalars(
        select(TrackingNumber.e164).where(TrackingNumber.route_id == route.id)
    ).all()
    if numbers:
        raise AdminError(f"numbers take route {name!r}: {', '.join(sorted(numbers))}")
    before = session.scalars(select(Route.name).where(Route.after_hours_route_id == route.id))
    if names := before.all():
        raise AdminError(f"routes use {name!r} after hours: {', '.join(sorted(names))}")
    audit.record(session, actor, "route.remove", name, account_id=route.account_id)
    session.delete(route)


def numbers(session: Session) -> list[TrackingNumber]:
    return list(session.scalars(select(TrackingNumber).order_by(TrackingNumber.e164)))


def number_by_e164(session: Session, number: str, region: str = "US") -> TrackingNumber:
    e164 = to_e164(number, region)
    found = session.scalar(select(TrackingNumber).where(TrackingNumber.e164 == e164))
    if found is None:
        raise AdminError(f"no tracking number {e164}")
    return found


def edit_number(
    session: Session,
    number: str,
    actor: str,
    region: str = "US",
    route: str | None = None,
    source: str | None = None,
    label: str | None = None,
) -> TrackingNumber:
    """Change a number's route, source or label ('' clears the source or the label)."""
    found = number_by_e164(session, number, region)
    before = _number_fields(session, found)
    if route is not None:
        found.route_id = route_by_name(session, route, found.account_id).id
    if source is not None:
        found.source_id = _source(session, found.account_id, source).id if source else None
    if label is not None:
        found.label = label.strip()[:120] or None
    session.flush()
    audit.record(
        session,
        actor,
        "number.edit",
        found.e164,
        detail=audit.change(before, _number_fields(session, found)),
        account_id=found.account_id,
    )
    return found


def _number_fields(session: Session, number: TrackingNumber) -> dict[str, object]:
    route = session.get(Route, number.route_id) if number.route_id else None
    source = session.get(Source, number.source_id) if number.source_id else None
    return {
        "route": route.name if route else None,
        "source": source.name if source else None,
        "label": number.label,
    }


def release_number(session: Session, number: str, actor: str, region: str = "US") -> None:
    """The number takes no more calls; its calls keep their source. Adding it again takes it
    back."""
    found = number_by_e164(session, number, region)
    if found.released_at is not None:
        raise AdminError(f"tracking number {found.e164} is already released")
    found.released_at = utcnow()
    found.route_id = None
    audit.record(session, actor, "number.release", found.e164, account_id=found.account_id)


def sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.account_id, Source.name)))


def add_source(
    session: Session, name: str, medium: str | None, account_id: int | None, actor: str
) -> Source:
    account = get_account(session, account_id)
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise AdminError("a source name is 1 to 120 characters")
    if medium is not None and len(medium) > 60:
        raise AdminError("a medium is at most 60 characters")
    if session.scalar(
        select(Source.id).where(Source.account_id == account.id, Source.name == name)
    ):
        raise AdminError(f"source {name!r} already exists")
    source = Source(account_id=account.id, name=name, medium=(medium or "").strip() or None)
    session.add(source)
    session.flush()
    audit.record(session, actor, "source.add", name[:64], account_id=account.id)
    return source


def remove_source(session: Session, source_id: int, actor: str) -> Source:
    """A source no tracking number uses (their calls keep theirs through the number)."""
    source = session.get(Source, source_id)
    if source is None:
        raise AdminError(f"no source {source_id}")
    using = session.scalars(
        select(TrackingNumber.e164).where(TrackingNumber.source_id == source.id)
    ).all()
    if using:
        raise AdminError(f"numbers have source {source.name!r}: {', '.join(sorted(using))}")
    audit.record(session, actor, "source.remove", source.name[:64], account_id=source.account_id)
    session.delete(source)
    return source
