"""Alembic migrations, one history per service under services/<service>/migrations/."""
from __future__ import annotations

from alembic import command
from alembic.config import Config

from services.common import config


def alembic_config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(config.ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or config.db_url(service)).replace("%", "%%"))
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    command.upgrade(alembic_config(service, url), "head")


def make_revision(service: str, message: str) -> None:
    """Autogenerate a revision against the database brought to head first (use a scratch LANLING_VAR)."""
    upgrade(service)
    command.revision(alembic_config(service), message=message, autogenerate=True)


def run_env(metadata) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import engine_from_config, pool

    cfg = context.config
    connectable = engine_from_config(cfg.get_section(cfg.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
