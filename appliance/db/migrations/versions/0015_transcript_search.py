"""transcript search: SQLite FTS5 over the dialogue's turns, PostgreSQL full text

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 21:00:00

Not in the models (appliance/db/search.py names them): an FTS5 table and its shadow tables
on SQLite, an expression index on PostgreSQL.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_transcript_turns_search ON transcript_turns "
            "USING gin (to_tsvector('simple', text))"
        )
        return
    # external content: the text lives once, in transcript_turns; triggers keep the index
    # in step (a turn erased with its recording leaves the index with it)
    op.execute(
        "CREATE VIRTUAL TABLE transcript_search USING fts5("
        "text, content='transcript_turns', content_rowid='id', tokenize='unicode61')"
    )
    op.execute(
        "CREATE TRIGGER transcript_search_insert AFTER INSERT ON transcript_turns BEGIN "
        "INSERT INTO transcript_search(rowid, text) VALUES (new.id, new.text); END"
    )
    op.execute(
        "CREATE TRIGGER transcript_search_delete AFTER DELETE ON transcript_turns BEGIN "
        "INSERT INTO transcript_search(transcript_search, rowid, text) "
        "VALUES ('delete', old.id, old.text); END"
    )
    op.execute(
        "CREATE TRIGGER transcript_search_update AFTER UPDATE ON transcript_turns BEGIN "
        "INSERT INTO transcript_search(transcript_search, rowid, text) "
        "VALUES ('delete', old.id, old.text); "
        "INSERT INTO transcript_search(rowid, text) VALUES (new.id, new.text); END"
    )
    op.execute("INSERT INTO transcript_search(transcript_search) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_transcript_turns_search")
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER transcript_search_{trigger}")
    op.execute("DROP TABLE transcript_search")
