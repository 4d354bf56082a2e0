"""Alembic environment: faceid always runs migrations on a connection it opened itself
(``db.engine.open_database``), passed in ``config.attributes['connection']``."""

from alembic import context

from db.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
