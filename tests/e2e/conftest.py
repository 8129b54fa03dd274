"""e2e: the real processes, started the way `make run` starts them."""
from __future__ import annotations

import pytest

from tests.conftest import Databases, using_postgres
from tests.harness import System


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("system")
    dbs = Databases(workdir, True) if using_postgres() else None
    sys_ = System(workdir, db_urls=dbs.urls if dbs else None)
    sys_.run_all()
    try:
        sys_.wait_healthy(timeout=180)
        yield sys_
    finally:
        sys_.stop()
        if dbs:
            dbs.drop()
