"""No secrets in the repository: every tracked file is scanned for private keys, keys and passwords.

The only allowed look-alikes are placeholders (deploy/env.example leaves every value empty) and
the throwaway values the test suite sets for itself (ALLOWED below)."""
from __future__ import annotations

import re
import subprocess

import pytest

from services.common import config

# name = value assignments of secret-looking names, in .env/.yml/.conf/.json/.py/.md/.sh
SECRET_NAMES = r"(?:password|passwd|secret|api[_-]?key|token|data[_-]?keys|hash[_-]?key|private[_-]?key)"
PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Lanling API key": re.compile(r"\bll_[A-Za-z0-9_-]{40,}"),
    "Fernet key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9=])"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "URL with a password": re.compile(r"[a-z][a-z0-9+]*://[^/\s:@'\"]+:([^@\s/'\"$<{]{4,})@"),
    # NAME=value as in an .env file or a shell script: any value at all
    "secret in an environment line": re.compile(rf"(?i)^\s*(?:export\s+)?[A-Z_]*{SECRET_NAMES}[A-Z_]*=([^\s$]\S*)"),
    # name = "literal" in code or YAML: a value that looks random
    "secret literal": re.compile(rf"(?i)\b[A-Z_]*{SECRET_NAMES}[A-Z_]*['\"]?\s*[=:]\s*(['\"])([^'\"\s]{{8,}})\1"),
}
# Values that look like secrets but are not: test-suite throwaways and documented placeholders.
ALLOWED_VALUES = {
    "guest",  # RabbitMQ's local-only default account, used by the tests
    "test-operator-key", "test-token-secret", "test-hash-key", "test-initial-password",
}
# placeholders: references to variables or to where the value comes from, not values
PLACEHOLDER = re.compile(r"^(?:\$|<|\{|%|os\.|config\.|settings\.|self\.|env|none|null|true|false|change-?me|"
                         r"\*+|x{3,}|\.\.\.|f\"|b\"|secrets\.|getattr|body|request|args|account|principal|"
                         r"auth\.|str\(|required|optional)", re.I)
SKIP_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".webp", ".ico", ".gz", ".zip")


def looks_random(value: str) -> bool:
    """A generated secret mixes letters and digits and is not made of words (push-secret-for-tests)."""
    if re.search(r"(?i)test|example|dummy|fake|placeholder|sample", value):
        return False
    if list(value) == sorted(value):
        return False  # an alphabet, not a secret
    words = re.fullmatch(r"[a-z]+(?:[-_][a-z0-9]+)*", value)
    return len(value) >= 10 and bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value)) and not words


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=config.ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in out.stdout.decode().split("\0") if name and not name.endswith(SKIP_SUFFIXES)]


def findings(name: str, content: str) -> list[str]:
    found = []
    for lineno, line in enumerate(content.splitlines(), 1):
        for kind, pattern in PATTERNS.items():
            if kind == "secret in an environment line" and name.endswith(".py"):
                continue  # keyword arguments look the same; literals are checked as "secret literal"
            for match in pattern.finditer(line):
                value = match.group(match.lastindex or 0) if match.lastindex else match.group(0)
                if kind == "secret literal":
                    value = match.group(2)
                if kind in ("secret literal", "secret in an environment line", "URL with a password"):
                    if value in ALLOWED_VALUES or PLACEHOLDER.match(value):
                        continue
                if kind == "secret literal" and not looks_random(value):
                    continue
                found.append(f"{name}:{lineno}: {kind}: {line.strip()[:120]}")
    return found


def test_no_tracked_file_holds_a_secret():
    problems = []
    for name in tracked_files():
        path = config.ROOT / name
        if not path.is_file():
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += findings(name, content)
    assert not problems, "possible secrets in tracked files:\n" + "\n".join(problems)


def test_env_example_leaves_every_secret_empty():
    for line in (config.ROOT / "deploy" / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert value == "", f"deploy/env.example gives {name} a value; leave it empty"


def test_dot_env_is_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=config.ROOT)
    assert ignored.returncode == 0, ".env (the deployment's secrets) must be in .gitignore"


# assembled at run time, so that this file itself holds none of them
@pytest.mark.parametrize("planted", [
    "-----BEGIN RSA " + "PRIVATE KEY-----",
    "LANLING_DATA_KEYS=" + "a" * 43 + "=",
    "NOTIFY_SMTP_PASSWORD=" + "hunter2",
    "smtp_password = " + '"Zq8pL2' + 'vR9wXk"',
    "  password: " + '"Zq8pL2' + 'vR9wXk"',
    "AMQP_URI=amqp://lanling:" + "S3cretPassw0rd" + "@rabbitmq:5672/lanling",
    "key = 'll_" + "x" * 43 + "'",
    "AKIA" + "ABCDEFGHIJKLMNOP",
])
def test_the_scanner_catches_planted_secrets(planted):
    assert findings("planted.txt", f"# a line\n{planted}\n"), planted
