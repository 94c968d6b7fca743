"""Alembic environment: runs on the connection (and inside the transaction) the core hands over.

Migrations are never run through the ``alembic`` command directly; use ``crm db upgrade`` and
``crm modules enable|upgrade|uninstall``, which pick the branches of the right modules.
"""

from alembic import context

from core.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
