"""Signing in: passwords, browser sessions, lockout and API tokens. Blocking calls (database,
bcrypt); the web layer runs them in threads.

Session ids and API tokens are random and stored only as SHA-256 hashes. Wrong answers lock
the client network that gave them out of that user, never the user for everyone (lockout.py);
whether a name exists, is locked or had the wrong password all read the same to the person
trying.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit, lockout, totp
from appliance.access import Principal, principal_for
from appliance.brand import Brand, brand_for
from appliance.db.models import ApiKey, SigninFailure, User, UserLink, WebSession, utcnow
from appliance.ratelimit import client_key
from appliance.secrets import SecretBox, check_password, hash_password, token_hash

IDLE = dt.timedelta(hours=1)
LIFETIME = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(minutes=1)
PASSWORD_MIN = 12
PASSWORD_MAX = 1000


@functools.cache
def _decoy() -> str:
    """A bcrypt check of a name that does not exist costs the same as one that does."""
    return hash_password(secrets.token_urlsafe(16))


class PasswordRejected(ValueError):
    """A new password that may not be used; the message says why."""


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie; only its hash is stored
    principal: Principal
    must_change_password: bool
    needs_code: bool = False  # the password was right; a TOTP code must follow


@dataclass(frozen=True)
class SessionState:
    principal: Principal
    must_change_password: bool
    verified: bool  # False while the TOTP code of the sign-in is awaited
    brand: Brand = field(default_factory=Brand)


def disabled(user: User) -> bool:
    """Its account is being deleted: nobody of it signs in any more."""
    return user.account.delete_requested_at is not None


def _start_session(session: Session, user: User, client: str | None, verified: bool = True) -> str:
    """A new browser session for the user; returns its id (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(token_hash=token_hash(token), user_id=user.id, client=client, verified=verified)
    )
    return token


def _strikes(session: Session, user: User, network: str) -> lockout.Strikes:
    row = session.get(SigninFailure, (user.id, network))
    if row is None:
        return lockout.Strikes()
    return lockout.Strikes(row.failures, row.last_failed_at, row.locked_until)


def _locked(session: Session, user: User, client: str | None, now: dt.datetime) -> bool:
    """Whether the client's network is locked out of this user."""
    return lockout.locked(_strikes(session, user, client_key(client)), now)


def _wrong_answer(session: Session, user: User, client: str | None, now: dt.datetime) -> bool:
    """Count a wrong answer against the client's network and the user; True when the network
    is locked out of the user from now on."""
    network = client_key(client)
    recent = lockout.recent(user.failed_logins, user.failed_at, now)
    after = lockout.strike(_strikes(session, user, network), recent, now)
    session.merge(
        SigninFailure(
            user_id=user.id,
            network=network,
            failures=after.count,
            last_failed_at=now,
            locked_until=after.locked_until,
        )
    )
    user.failed_logins, user.failed_at = recent + 1, now
    return lockout.locked(after, now)


def _right_answer(session: Session, user: User, client: str | None) -> None:
    """The network signed in: its wrong answers are forgotten (the user's count is not: one
    success says nothing about the other networks)."""
    session.execute(
        delete(SigninFailure).where(
            SigninFailure.user_id == user.id, SigninFailure.network == client_key(client)
        )
    )


def _user_for_sign_in(session: Session, username: str, now: dt.datetime) -> User | None:
    """The user, its row locked against a second appliance's concurrent sign-in (PostgreSQL;
    SQLite has one writer); networks quiet for a day are forgotten on the way."""
    session.execute(
        delete(SigninFailure).where(SigninFailure.last_failed_at < now - lockout.FORGET_AFTER)
    )
    return session.scalar(select(User).where(User.username == username[:200]).with_for_update())


def sign_in(
    sessions: sessionmaker[Session], username: str, password: str, client: str | None
) -> SignedIn | None:
    now = utcnow()
    with sessions.begin() as session:
        user = _user_for_sign_in(session, username, now)
        if user is None:
            check_password(password, _decoy())
            audit.record(session, "anonymous", "signin.refused", username[:64], client=client)
            return None
        right = check_password(password, user.password_hash)  # always: the same time
        locked = _locked(session, user, client, now)
        if locked or not right or disabled(user):
            if not locked and not right:
                _wrong_answer(session, user, client, now)
            why = "locked" if locked else "wrong password" if not right else "account disabled"
            audit.record(
                session,
                f"user:{user.username}",
                "signin.refused",
                user.username,
                client=client,
                detail=why,
                account_id=user.account_id,
            )
            return None
        needs_code = user.totp_sealed is not None
        if not needs_code:
            _right_answer(session, user, client)
        token = _start_session(session, user, client, verified=not needs_code)
        audit.record(
            session,
            f"user:{user.username}",
            "signin.password" if needs_code else "signin",
            user.username,
            client=client,
            account_id=user.account_id,
        )
        return SignedIn(token, principal_for(session, user), user.must_change_password, needs_code)


def check_code(
    sessions: sessionmaker[Session], box: SecretBox, token: str, code: str, client: str | None
) -> str | None:
    """The second step: a right TOTP code, used once, turns the pending session into a new,
    signed-in one (its token is returned). A wrong code counts as a wrong password; the
    pending session ends when the network is locked out."""
    now = utcnow()
    with sessions.begin() as session:
        row = session.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
        sealed = row.user.totp_sealed if row is not None and not row.verified else None
        if row is None or sealed is None or disabled(row.user):
            return None
        user = session.get(User, row.user_id, with_for_update=True)  # as in sign_in
        assert user is not None  # the session's foreign key
        step = totp.matching_step(box.open(sealed), code, now)
        locked = _locked(session, user, client, now)
        if locked or step is None or step <= (user.totp_last_step or -1):
            if locked or _wrong_answer(session, user, client, now):
                session.delete(row)
            audit.record(
                session,
                f"user:{user.username}",
                "signin.refused",
                user.username,
                client=client,
                detail="locked" if locked else "wrong code",
                account_id=user.account_id,
            )
            return None
        user.totp_last_step = step
        _right_answer(session, user, client)
        session.delete(row)
        fresh = _start_session(session, user, client)
        audit.record(
            session,
            f"user:{user.username}",
            "signin",
            user.username,
            client=client,
            detail="with code",
            account_id=user.account_id,
        )
        return fresh


def locked_networks(session: Session, user: User) -> list[str]:
    """The client networks locked out of the user now."""
    return list(
        session.scalars(
            select(SigninFailure.network)
            .where(SigninFailure.user_id == user.id, SigninFailure.locked_until > utcnow())
            .order_by(SigninFailure.network)
        )
    )


def set_totp(
    sessions: sessionmaker[Session],
    box: SecretBox,
    user_id: int,
    password: str,
    secret: str | None,
    code: str,
    client: str | None,
    keep: str = "",
) -> None:
    """Turn the second step on (with a new secret and a code from it) or off (secret None):
    both need the current password. The user's other sessions (all but `keep`) end."""
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None or not check_password(password, user.password_hash):
            raise PasswordRejected("the current password is not right")
        if secret is not None:
            if not totp.valid_secret(secret):
                raise PasswordRejected("that set-up key is not one this page made; start again")
            step = totp.matching_step(secret, code, utcnow())
            if step is None:
                raise PasswordRejected("that code is not right; check the phone's clock")
            user.totp_sealed = box.seal(secret)
            user.totp_last_step = step
        else:
            user.totp_sealed = None
            user.totp_last_step = None
        session.execute(
            delete(WebSession).where(
                WebSession.user_id == user.id, WebSession.token_hash != token_hash(keep)
            )
        )
        audit.record(
            session,
            f"user:{user.username}",
            "user.totp.on" if secret else "user.totp.off",
            user.username,
            client=client,
            account_id=user.account_id,
        )


def session_user(sessions: sessionmaker[Session], token: str) -> SessionState | None:
    """The principal of a browser session, whether it must change its password first and
    whether its sign-in is complete."""
    now = utcnow()
    with sessions.begin() as session:
        row = session.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
        if row is None:
            return None
        seen, created = row.last_seen_at, row.created_at
        assert seen is not None and created is not None
        if now - seen > IDLE or now - created > LIFETIME or disabled(row.user):
            session.delete(row)
            return None
        if now - seen > TOUCH_EVERY:
            row.last_seen_at = now
        return SessionState(
            principal_for(session, row.user),
            row.user.must_change_password,
            row.verified,
            brand_for(session, row.user.account_id),
        )


def sign_out(sessions: sessionmaker[Session], token: str, client: str | None) -> None:
    with sessions.begin() as session:
        row = session.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token)))
        if row is not None:
            audit.record(
                session,
                f"user:{row.user.username}",
                "signout",
                row.user.username,
                client=client,
                account_id=row.user.account_id,
            )
            session.delete(row)


def csrf_token(session_token: str) -> str:
    """The form token of a session: derived from its id, which only the browser holds."""
    return hashlib.sha256(b"csrf\0" + session_token.encode("ascii")).hexdigest()


def csrf_ok(session_token: str, sent: str) -> bool:
    """Whether a form's token is the session's (compared as bytes: a text token of other
    than ASCII would make compare_digest raise)."""
    return secrets.compare_digest(csrf_token(session_token).encode(), sent.encode(errors="replace"))


def check_new_password(username: str, password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise PasswordRejected(f"the password must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise PasswordRejected(f"the password may be at most {PASSWORD_MAX} characters")
    if username.lower() in password.lower():
        raise PasswordRejected("the password may not contain the user name")


def set_password(session: Session, user: User, password: str, actor: str) -> None:
    """A new password: other sessions of the user end, and it is no longer temporary unless an
    admin set it for someone else."""
    check_new_password(user.username, password)
    if check_password(password, user.password_hash):
        raise PasswordRejected("the new password must differ from the old one")
    user.password_hash = hash_password(password)
    user.must_change_password = actor != f"user:{user.username}"
    user.failed_logins, user.failed_at = 0, None
    session.execute(delete(SigninFailure).where(SigninFailure.user_id == user.id))
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(session, actor, "user.password", user.username, account_id=user.account_id)


def change_own_password(
    sessions: sessionmaker[Session], user_id: int, current: str, new: str, client: str | None
) -> str:
    """Returns the token of a fresh session (all the user's sessions end with the change)."""
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise PasswordRejected("this user no longer exists")
        if not check_password(current, user.password_hash):
            raise PasswordRejected("the current password is not right")
        set_password(session, user, new, f"user:{user.username}")
        return _start_session(session, user, client)


def token_user(sessions: sessionmaker[Session], token: str) -> Principal | None:
    """The principal of an API token, narrowed to the token's scopes; None when the token is
    unknown, revoked or expired."""
    now = utcnow()
    with sessions.begin() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash(token)))
        if key is None or key.revoked_at is not None or disabled(key.user):
            return None
        expires = key.expires_at
        if expires is not None and expires <= now:
            return None
        used = key.last_used_at
        if used is None or now - used > TOUCH_EVERY:
            key.last_used_at = now
        return principal_for(session, key.user, key.scopes.split())


# links mailed to set a password ---------------------------------------------------------------
LINK_LIFETIME = {"invite": dt.timedelta(days=3), "reset": dt.timedelta(hours=1)}
RESET_EVERY = dt.timedelta(minutes=5)


def issue_link(session: Session, user: User, purpose: str) -> str:
    """A new link of `purpose` for the user (the older ones of that purpose stop working);
    returns its token, which only the mail carries."""
    session.execute(
        delete(UserLink).where(UserLink.user_id == user.id, UserLink.purpose == purpose)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserLink(
            token_hash=token_hash(token),
            user_id=user.id,
            purpose=purpose,
            expires_at=utcnow() + LINK_LIFETIME[purpose],
        )
    )
    return token


def _live_link(session: Session, token: str) -> UserLink | None:
    link = session.scalar(select(UserLink).where(UserLink.token_hash == token_hash(token)))
    if link is None or link.used_at is not None:
        return None
    expires = link.expires_at
    live = expires is not None and expires > utcnow() and not disabled(link.user)
    return link if live else None


def link_user(sessions: sessionmaker[Session], token: str) -> str | None:
    """Whose link this is, while it can be used."""
    with sessions() as session:
        link = _live_link(session, token)
        return link.user.username if link else None


def use_link(
    sessions: sessionmaker[Session], token: str, password: str, client: str | None
) -> SignedIn | None:
    """Set the password a link was sent for; the link is used up and a session starts (its
    token is returned); a user with a second step still owes the code. None when the link is
    unknown, used or expired."""
    with sessions.begin() as session:
        link = _live_link(session, token)
        if link is None:
            return None
        user = link.user
        set_password(session, user, password, f"user:{user.username}")
        user.must_change_password = False
        link.used_at = utcnow()
        needs_code = user.totp_sealed is not None
        fresh = _start_session(session, user, client, verified=not needs_code)
        audit.record(
            session,
            f"user:{user.username}",
            f"user.{link.purpose}.used",
            user.username,
            client=client,
            account_id=user.account_id,
        )
        return SignedIn(fresh, principal_for(session, user), False, needs_code)


def reset_request(
    sessions: sessionmaker[Session], who: str, client: str | None
) -> tuple[str, str] | None:
    """A reset link for the user named or addressed `who`, if it has an address: (address,
    token). The caller mails it and tells the asker the same thing either way."""
    who = who.strip()[:254]
    with sessions.begin() as session:
        user = session.scalar(
            select(User).where((User.username == who) | (User.email == who.lower()))
        )
        audit.record(
            session,
            "anonymous",
            "user.reset.asked",
            (user.username if user else who)[:64],
            client=client,
            detail=None if user and user.email else "no such user or no address",
            account_id=user.account_id if user else None,
        )
        if user is None or not user.email:
            return None
        recent = session.scalar(
            select(UserLink.id).where(
                UserLink.user_id == user.id,
                UserLink.purpose == "reset",
                UserLink.used_at.is_(None),
                UserLink.created_at > utcnow() - RESET_EVERY,
            )
        )
        if recent is not None:  # one mail every few minutes at most: no inbox flooding
            return None
        return user.email, issue_link(session, user, "reset")
