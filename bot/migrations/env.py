"""Alembic's environment for the conversation log (bot/convlog.py): online migrations only, on the
engine ``bot.convlog.upgrade`` hands over (SQLite or PostgreSQL)."""

from alembic import context

from bot.convlog import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
