"""Alembic, driven from code: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


# Made by migrations but not in the models: full-text search (SQLite FTS5 and its shadow
# tables, PostgreSQL's expression index); schema comparisons leave them out.
UNMODELLED = ("transcript_search", "ix_transcript_turns_search")


def modelled(name: str | None, kind: str, _parent: object = None) -> bool:
    return not (name or "").startswith(UNMODELLED)


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether this version's migrations know `revision` (an archive's, say)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return revision in {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
