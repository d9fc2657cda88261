"""deliveries keep a short reason: what far ends said is dropped from last_error

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:00:00

Until now a failed send kept the client library's message, which quotes what answered (an AMI
or SMTP banner, an error page) and the whole address asked for (whose path often holds a
secret); Google Ads' partial failures kept Google's message. The delivery log shows these to
every user who may read the configuration. Each such error becomes the fixed reason the
outbox now keeps for that kind of failure. Nothing changes on a downgrade: what was dropped is
gone.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# "<exception class>: <message>", as the outbox wrote it
RAISED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): ")
GOOGLE = "Google Ads refused it: "
REASONS = {
    "ClientConnectorDNSError": "the name does not resolve",
    "ClientConnectorCertificateError": "its TLS certificate is not trusted",
    "ClientConnectorSSLError": "TLS failed",
    "ClientSSLError": "TLS failed",
    "ClientConnectorError": "could not connect",
    "ClientProxyConnectionError": "could not connect",
    "ServerDisconnectedError": "closed without an answer",
    "TimeoutError": "no answer in time",
    "ServerTimeoutError": "no answer in time",
    "ConnectionTimeoutError": "no answer in time",
    "SocketTimeoutError": "no answer in time",
    "ClientResponseError": "the answer is not HTTP",
    "ClientPayloadError": "the answer is not HTTP",
}


def short(error: str) -> str:
    """The reason kept for an error as stored before this revision."""
    if error.startswith(GOOGLE):
        return "Google Ads refused it (partial failure)"
    raised = RAISED.match(error)
    if raised is None:
        return error  # already a fixed phrase (or the bare class name of an odd failure)
    return REASONS.get(raised.group(1), "the connection failed")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, last_error FROM deliveries WHERE last_error LIKE :colon"),
        {"colon": "%: %"},
    ).all()
    for delivery_id, error in rows:
        if short(error) != error:
            bind.execute(
                sa.text("UPDATE deliveries SET last_error = :reason WHERE id = :id"),
                {"reason": short(error), "id": delivery_id},
            )


def downgrade() -> None:
    pass
