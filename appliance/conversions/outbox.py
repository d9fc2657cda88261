"""The outbox: takes each delivery to its destination, the only way anything leaves the box.

A delivery is claimed (its next attempt pushed past the time a send may take, so that a
crash mid-send retries it rather than losing it), sent, and then marked delivered, or given
its next attempt after a backoff that doubles from 30 seconds up to 6 hours, or parked after
MAX_ATTEMPTS with the last error kept for the admin to see and retry. Connections go only
where conversions/reach.py allows (a refused address is parked at once); redirects are not
followed; only the status and a short fixed reason are kept of an answer (outbound.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.config import DestinationsConfig
from appliance.conversions import outbound, platforms
from appliance.db.models import Account, Delivery, Destination
from appliance.secrets import SecretBox

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
LEASE = 120.0  # seconds a claimed delivery is left alone while it is being sent
BATCH = 20


def backoff(attempts: int) -> float:
    return min(30.0 * 2 ** (attempts - 1), 6 * 3600.0)


@dataclass(frozen=True)
class Claimed:
    id: int
    destination_id: int
    attempts: int
    kind: str
    url: str | None
    settings: dict[str, Any]
    secret: dict[str, str]
    event: dict[str, Any]


class DeliveryFailed(Exception):
    def __init__(self, reason: str, status: int | None = None, final: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.final = final  # trying again cannot help: park it now


ANSWER_BYTES = 64 * 1024  # of an answer, no more is read
RETRIED = frozenset({401, 408, 409, 425, 429})  # client errors worth another try


class Outbox:
    def __init__(
        self, sessions: sessionmaker[Session], box: SecretBox, config: DestinationsConfig
    ) -> None:
        self.db = sessions
        self.box = box
        self.config = config
        self.tokens: dict[int, tuple[str, str, float]] = {}  # destination -> refresh, access, until
        self.delivered = 0
        self.failed = 0

    async def run(self, every: float = 1.0) -> None:
        async with outbound.client(self.config) as http:
            while True:
                try:
                    claimed = await asyncio.to_thread(self.claim, time.time())
                    await asyncio.gather(*(self.deliver(http, c) for c in claimed))
                except Exception:
                    log.exception("the outbox failed; trying again")
                    claimed = []
                if len(claimed) < BATCH:
                    await asyncio.sleep(every)

    def claim(self, now: float, limit: int = BATCH) -> list[Claimed]:
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        found = []
        with self.db.begin() as session:
            due = session.execute(
                select(Delivery, Destination)
                .join(Destination, Destination.id == Delivery.destination_id)
                .join(Account, Account.id == Destination.account_id)
                .where(Delivery.state == "pending", Delivery.next_attempt_at <= moment)
                .where(Account.delete_requested_at.is_(None))  # held while being deleted
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for delivery, destination in due:
                if delivery.attempts >= MAX_ATTEMPTS:  # sent, but never recorded: give up
                    delivery.state, delivery.last_error = "parked", "no outcome after many tries"
                    self.failed += 1
                    continue
                delivery.attempts += 1
                delivery.next_attempt_at = moment + dt.timedelta(seconds=LEASE)
                try:
                    secret = (
                        json.loads(self.box.open(destination.secret_sealed))
                        if destination.secret_sealed
                        else {}
                    )
                except Exception:  # sealed under another key: no use trying again
                    delivery.state = "parked"
                    delivery.last_error = "its secrets cannot be opened: add the destination again"
                    self.failed += 1
                    continue
                found.append(
                    Claimed(
                        delivery.id,
                        destination.id,
                        delivery.attempts,
                        destination.kind,
                        destination.url,
                        json.loads(destination.settings or "{}"),
                        secret,
                        json.loads(delivery.payload),
                    )
                )
        return found

    async def deliver(self, http: aiohttp.ClientSession, claimed: Claimed) -> None:
        final = False
        try:
            request = await self.request(http, claimed)
            async with http.post(
                request.url, data=request.body, headers=dict(request.headers),
                allow_redirects=False,
            ) as response:  # fmt: skip
                text = (await response.content.read(ANSWER_BYTES)).decode(errors="replace")
                if response.status == 401:
                    self.tokens.pop(claimed.destination_id, None)  # a new one next time
                if not 200 <= response.status < 300:
                    # an ad platform's refusal stays a refusal; a webhook's receiver may mend
                    refused = claimed.kind != "webhook" and 400 <= response.status < 500
                    raise DeliveryFailed(
                        f"answered {response.status}", response.status,
                        final=refused and response.status not in RETRIED,
                    )  # fmt: skip
                problem = _partial_failure(claimed.kind, text)
                if problem:
                    raise DeliveryFailed(problem, response.status, final=True)
            status, error = response.status, None
        except platforms.NotForThisDestination as exc:
            status, error, final = None, f"not sent: {exc}", True
        except DeliveryFailed as exc:
            status, error, final = exc.status, str(exc), exc.final
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # never str(exc): it holds what answered (a banner) and the whole address
            status, error, final = None, outbound.reason(exc), outbound.final(exc)
        except Exception as exc:  # an answer of a shape nobody expected: counted, retried
            log.exception("delivery %s failed", claimed.id)
            status, error = None, f"{type(exc).__name__}"
        await asyncio.to_thread(self.record, claimed, status, error, time.time(), final)

    def record(
        self,
        claimed: Claimed,
        status: int | None,
        error: str | None,
        now: float,
        final: bool = False,
    ) -> None:
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        with self.db.begin() as session:
            delivery = session.get(Delivery, claimed.id)
            if delivery is None:  # its destination was removed meanwhile
                return
            delivery.last_status, delivery.last_error = status, (error or None) and error[:300]
            if error is None:
                delivery.state, delivery.delivered_at = "delivered", moment
                self.delivered += 1
            elif final or delivery.attempts >= MAX_ATTEMPTS:
                delivery.state = "parked"
                self.failed += 1
                log.warning("delivery %s parked: %s", claimed.id, error)
            else:
                delivery.next_attempt_at = moment + dt.timedelta(seconds=backoff(delivery.attempts))

    async def request(self, http: aiohttp.ClientSession, c: Claimed) -> platforms.Request:
        config = self.config
        if c.kind == "webhook":
            return platforms.webhook(
                str(c.url), c.secret["secret"], c.event, c.id, int(time.time())
            )
        if c.kind == "meta":
            return platforms.meta(config.meta_api, c.settings, c.secret["token"], c.event)
        if c.kind == "google_ads":
            token = await self.access_token(http, config.google_oauth, c, None)
            return platforms.google_ads(
                config.google_ads_api, c.settings, token, c.secret["developer_token"], c.event
            )
        token = await self.access_token(
            http, config.microsoft_oauth, c, "https://ads.microsoft.com/msads.manage offline_access"
        )
        return platforms.microsoft(
            config.microsoft_api, c.settings, token, c.secret["developer_token"], c.event
        )

    async def access_token(
        self, http: aiohttp.ClientSession, url: str, c: Claimed, scope: str | None
    ) -> str:
        """An OAuth access token from the refresh token, kept until shortly before it ends."""
        refresh = c.secret.get("refresh_token", "")
        cached = self.tokens.get(c.destination_id)  # each destination its own: never another's
        if cached and cached[0] == refresh and cached[2] > time.monotonic():
            return cached[1]
        form = {
            "grant_type": "refresh_token",
            "client_id": str(c.settings.get("client_id", "")),
            "client_secret": c.secret.get("client_secret", ""),
            "refresh_token": c.secret.get("refresh_token", ""),
        }
        if scope:
            form["scope"] = scope
        async with http.post(url, data=form, allow_redirects=False) as response:
            if response.status != 200:
                raise DeliveryFailed(f"the sign-in for an access token answered {response.status}")
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                raise DeliveryFailed("the sign-in answered something that is not JSON") from None
        token = str(answer.get("access_token") or "") if isinstance(answer, dict) else ""
        if not token:
            raise DeliveryFailed("the sign-in gave no access token")
        try:
            lifetime = float(answer.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        self.tokens[c.destination_id] = (refresh, token, time.monotonic() + max(0.0, lifetime - 60))
        return token


def _partial_failure(kind: str, text: str) -> str | None:
    """A 200 that still refused the conversion (Google's partial failures, SOAP faults)."""
    if kind == "google_ads":
        try:
            answer = json.loads(text)
        except ValueError:
            return "Google Ads gave an answer that is not JSON"
        error = answer.get("partialFailureError") if isinstance(answer, dict) else None
        if error:  # its code only: the delivery log keeps no text of an answer
            code = error.get("code") if isinstance(error, dict) else None
            said = f", code {code}" if isinstance(code, int) else ""
            return f"Google Ads refused it (partial failure{said})"
    if kind == "microsoft" and ("PartialErrors><" in text and "<BatchError" in text):
        return "Microsoft Advertising refused it (PartialErrors)"
    return None
