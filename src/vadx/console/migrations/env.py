"""Alembic's environment for vadx's event store: migrations run on the connection that
:func:`vadx.console.store.upgrade` hands over (never from a URL in a file)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)  # batch: SQLite's ALTER
with context.begin_transaction():
    context.run_migrations()
