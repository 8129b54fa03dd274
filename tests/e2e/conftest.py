"""e2e: the real processes, started the way `make run` starts them."""
from __future__ import annotations

import pytest

from tests.conftest import running_system


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("system")) as sys_:
        yield sys_
