"""`st run` for the fuzz suite: `python -m tests.fuzz.st_cli run ...`.

Two additions to schemathesis' own CLI:
- every request is counted per operation and status (`FUZZ_COUNTS=path.json`, written at
  exit), so the suite can show how many cases each endpoint really got;
- `hypothesis.target` is a no-op. schemathesis reports a `success_rate` target per case and
  Hypothesis then spends much of the run in its Pareto optimiser re-running candidates; the
  suite wants many varied cases per second instead.
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections import Counter, defaultdict


def main() -> None:
    import hypothesis
    import schemathesis

    hypothesis.target = lambda observation, *, label="": observation
    counts: dict[str, Counter] = defaultdict(Counter)
    lock = threading.Lock()

    @schemathesis.hook
    def after_call(context, case, response):
        with lock:
            counts[f"{case.method.upper()} {case.operation.path}"][str(response.status_code)] += 1

    path = os.environ.get("FUZZ_COUNTS")
    if path:
        def dump():
            with open(path, "w") as fh:
                json.dump({op: dict(c) for op, c in counts.items()}, fh, indent=1, sort_keys=True)

        atexit.register(dump)
    from schemathesis.cli import schemathesis as cli

    try:
        cli(prog_name="st")
    except SystemExit as exc:
        sys.exit(exc.code)


if __name__ == "__main__":
    main()
