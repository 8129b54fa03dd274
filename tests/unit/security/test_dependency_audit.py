""".ci/audit-deps reads pip-audit's report: a known vulnerability fails CI, and a run in which
nothing could be audited says so instead of passing as "no known vulnerabilities"."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from services.common import config

SCRIPT = config.ROOT / ".ci" / "audit-deps"


def run_with(tmp_path, dependencies, strict=False):
    report = json.dumps({"dependencies": dependencies, "fixes": []})
    fake = tmp_path / "pip-audit"
    # the fake writes the report where --output asks, as pip-audit does
    fake.write_text("#!/usr/bin/env python3\nimport sys\nargs = sys.argv\n"
                    f"open(args[args.index('--output') + 1], 'w').write({report!r})\n")
    fake.chmod(0o755)
    env = dict(os.environ, PIP_AUDIT=str(fake), LANLING_AUDIT_STRICT="1" if strict else "0")
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


CLEAN = {"name": "requests", "version": "2.32.5", "vulns": []}
SKIPPED = {"name": "alembic", "skip_reason": "Dependency not found on PyPI and could not be audited: alembic"}
VULNERABLE = {"name": "jinja2", "version": "2.10", "vulns": [{"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]}]}


def test_a_known_vulnerability_fails(tmp_path):
    result = run_with(tmp_path, [CLEAN, VULNERABLE])
    assert result.returncode == 1
    assert "VULNERABLE jinja2==2.10: PYSEC-2019-217 (fixed in 2.10.1)" in result.stdout


def test_clean_dependencies_pass_and_are_counted(tmp_path):
    result = run_with(tmp_path, [CLEAN, SKIPPED])
    assert result.returncode == 0
    assert "1 of 2 pinned dependencies audited" in result.stdout and "skipped: alembic" in result.stdout


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_nothing_audited_is_reported_as_not_audited(tmp_path, strict, code):
    result = run_with(tmp_path, [SKIPPED], strict=strict)
    assert result.returncode == code
    assert "0 of 1 pinned dependencies audited" in result.stdout and "NOT AUDITED" in result.stdout
