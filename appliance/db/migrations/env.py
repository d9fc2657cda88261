"""Alembic environment: the engine comes from the caller (appliance.db.migrate)."""

from alembic import context

from appliance.db.migrate import modelled
from appliance.db.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=modelled,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
