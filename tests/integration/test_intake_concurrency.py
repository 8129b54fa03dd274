"""Two reports of one dispute at the same moment, on two intake processes sharing PostgreSQL:
the second waits for the first's check-and-insert and merges into its case."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from sqlalchemy import create_engine, text

from services.common.clock import SystemClock
from services.common.db import Database
from services.intake import handlers
from services.intake.models import Base
from tests.harness import ROOT
from tests.unit.intake.conftest import PLACES

HOTLINE = {"order_no": "GD-C-1", "caller_name": "王秀英", "caller_phone": "13800001001", "township": "大仲村镇",
           "content": "来电人称其邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果。", "village": "后楼村"}
APP = {"post_id": "APP-C-1", "user_id": "u1", "phone": "13800001001", "section": "speak", "township": "大仲村镇",
       "content": "后楼村邻居李某砌院墙占了我家宅基地半米，协商好几次都没用。"}
OTHER_PROCESS = """
import json, sys
from services.common.clock import SystemClock
from services.common.db import Database
from services.intake import handlers
from services.intake.models import Base
db = Database(sys.argv[1], Base.metadata, "intake", SystemClock())
with db.transaction() as uow:
    print(json.dumps(handlers.submit(uow, "app", json.loads(sys.argv[2]), "app")))
"""


def test_the_second_of_two_simultaneous_reports_merges_into_the_first(postgres_databases):
    url = postgres_databases.urls["intake"]
    db = Database(url, Base.metadata, "intake", SystemClock())
    db.create_all()
    with db.transaction() as uow:
        handlers.replace_places(uow.session, {"version": 1, "places": PLACES}, uow.now)
    hotline = dict(HOTLINE, received_at=SystemClock().now().isoformat())
    with db.transaction() as uow:
        first = handlers.submit(uow, "hotline", hotline, "hotline")  # checked and inserted, not committed
        other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, url, json.dumps(APP, ensure_ascii=False)],
                                 cwd=ROOT, stdout=subprocess.PIPE, text=True)
        _wait_until_blocked(url)
    second = json.loads(other.communicate(timeout=60)[0])
    db.dispose()
    assert second["status"] == "merged" and second["merged_into"] == first["case_no"]


def _wait_until_blocked(url: str, timeout: float = 30) -> None:
    """Until the other process waits for the township's advisory lock."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                                ).scalar():
                    return
            time.sleep(0.05)
        raise TimeoutError("the other process never waited for the lock")
    finally:
        engine.dispose()
