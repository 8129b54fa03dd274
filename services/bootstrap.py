"""`lanling load-reference`: Lanling's sample directory, staff accounts and counsellor pool (idempotent).

Each service's data goes into that service's own database; the directory change reaches
intake as a `directory_updated` event through routing's outbox.
"""
from __future__ import annotations

import json

from services.common import config
from services.common.clock import SystemClock
from services.common.db import Database


def _db(service: str, metadata) -> Database:
    return Database(config.db_url(service), metadata, service, SystemClock())


def load_reference(force: bool = False) -> list[str]:
    from services.gateway.bootstrap import database as gateway_db, load_accounts
    from services.psych import handlers as psych
    from services.psych.match import load_reference as counsellor_reference
    from services.psych.models import Base as PsychBase
    from services.routing import handlers as routing
    from services.routing.directory import REFERENCE_DATA, Directory
    from services.routing.models import Base as RoutingBase

    lines = []
    directory = Directory.from_reference()
    db = _db("routing", RoutingBase.metadata)
    with db.transaction() as uow:  # intake gets the places snapshot whatever the outcome
        outcome = routing.load_reference(uow, directory, force=force)
    db.dispose()
    counts = {kind: len(items) for kind, items in directory.to_records().items()}
    if outcome == "kept":
        lines.append("directory: staff have edited the rosters since the reference was loaded; their edits are "
                     "kept and the changed reference data was NOT applied (`lanling load-reference --force` "
                     "replaces the directory with the reference)")
    else:
        lines.append(f"directory {outcome}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))

    accounts = json.loads((REFERENCE_DATA / "accounts.json").read_text(encoding="utf-8"))
    accounts += psych.staff_accounts()  # the counsellors' and the psych coordinator's logins
    created = load_accounts(accounts, gateway_db())
    lines.append(f"staff accounts: {created} created, {len(accounts) - created} already there")

    from services.notify.handlers import seed_default_roster
    from services.notify.models import Base as NotifyBase

    db = _db("notify", NotifyBase.metadata)
    with db.transaction() as uow:
        seeded = seed_default_roster(uow.session, accounts, uow.now, only_if_empty=True)
    db.dispose()
    lines.append(f"duty roster: {seeded} default entries" if seeded else "duty roster: defaults already there")

    _townships, records = counsellor_reference()
    db = _db("psych", PsychBase.metadata)
    with db.transaction() as uow:
        changed = psych.replace_pool(uow.session, records, uow.now)
    db.dispose()
    lines.append(f"counsellors: {len(records)} in the pool, {changed} added or changed")
    return lines
