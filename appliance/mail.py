"""Mail the appliance sends: invitations, password resets and alerts, through the SMTP server
the admin configured (smtp.*). Nothing else leaves the box by mail."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.config import EMAIL, SmtpConfig
from appliance.db.models import User

log = logging.getLogger(__name__)
SUBJECT_MAX = 200
BODY_MAX = 20_000


class MailError(Exception):
    """The mail could not be handed to the SMTP server; the message says why."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def message(sender: str, mail: Mail) -> EmailMessage:
    """Pure: the message as sent. Addresses are checked and headers hold one line each, so no
    value can add a header or a recipient."""
    for address in (sender, mail.to):
        if not EMAIL.fullmatch(address):
            raise MailError(f"{address[:80]!r} is not an e-mail address")
    subject = " ".join(mail.subject.split())[:SUBJECT_MAX]
    out = EmailMessage()
    out["From"] = sender
    out["To"] = mail.to
    out["Subject"] = subject
    out["Date"] = formatdate(localtime=False)
    out["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    out["Auto-Submitted"] = "auto-generated"
    out.set_content(mail.body[:BODY_MAX])
    return out


class Mailer:
    def __init__(self, config: SmtpConfig, password: str = "", timeout: float = 10.0) -> None:
        self.config = config
        self.password = password
        self.timeout = timeout

    @property
    def enabled(self) -> bool:
        return bool(self.config.host)

    def send(self, mail: Mail) -> None:
        """Blocking: hand the mail to the SMTP server or raise MailError."""
        if not self.enabled:
            raise MailError("no SMTP server is configured (smtp.host)")
        built = message(self.config.sender, mail)
        context = ssl.create_default_context()
        try:
            if self.config.security == "tls":
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.config.host, self.config.port, timeout=self.timeout, context=context
                )
            else:
                server = smtplib.SMTP(self.config.host, self.config.port, timeout=self.timeout)
            with server:
                if self.config.security == "starttls":
                    server.starttls(context=context)
                if self.config.username:
                    server.login(self.config.username, self.password)
                server.send_message(built)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"the SMTP server {self.config.host} refused or failed: {exc}"
            ) from None


class AlertMail(logging.Handler):
    """Mails every `ALERT ...` log line to the owners and admins who have an address, at most
    once an hour for the same alert, from a thread of its own (logging never waits on SMTP)."""

    EVERY = 3600.0

    def __init__(self, mailer: Mailer, sessions: sessionmaker[Session]) -> None:
        super().__init__(level=logging.WARNING)  # the quota ALERT is a warning
        self.mailer = mailer
        self.sessions = sessions
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-mail")
        self.sent: dict[str, float] = {}
        self.guard = threading.Lock()
        self.mailed = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            return
        if not text.startswith("ALERT") or not self.mailer.enabled:
            return
        key = text[:60]
        now = time.monotonic()
        with self.guard:
            if now - self.sent.get(key, -self.EVERY) < self.EVERY:
                return
            self.sent[key] = now
        self.pool.submit(self._send, text)

    def _send(self, text: str) -> None:
        try:
            with self.sessions() as session:
                addresses = session.scalars(
                    select(User.email).where(
                        User.role.in_(("owner", "admin")), User.email.is_not(None)
                    )
                ).all()
            for address in filter(None, addresses):
                self.mailer.send(Mail(address, f"Appliance alert: {text[6:80]}", text))
                self.mailed += 1
        except Exception as exc:  # an alert that cannot be mailed is still in the log
            log.warning("alert not mailed: %s", exc)

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        super().close()
