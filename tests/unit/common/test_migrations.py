"""Each service's migrations produce exactly its models' schema."""
from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from services.common import config
from services.common.migrate import upgrade


@pytest.mark.parametrize("service", config.SERVICES)
def test_migrations_match_the_models(service, tmp_path):
    url = f"sqlite:///{tmp_path / service}.db"
    upgrade(service, url)
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == [], f"{service}: models and migrations differ; run `lanling makemigrations {service} -m ...`"
