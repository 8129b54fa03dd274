"""The `lanling` command.

    lanling run [SERVICE[=N] ...]   set up and start the system (all services by default)
    lanling migrate [SERVICE ...]   apply database migrations
    lanling declare                 declare the broker topology
    lanling check-broker [--management]   start a local RabbitMQ (and its management API) if needed
    lanling load-reference          load Lanling's directory, accounts and counsellor pool (idempotent)
    lanling classify                JSON lines with "text" on stdin -> routing decisions on stdout
    lanling demo                    replay a realistic day of cases through every channel
    lanling dlq list|replay         inspect and replay dead letters
    lanling apikey create NAME --channels hotline,petition
    lanling sources add|list|disable [BROKER_USER] [--channels …]   AMQP ingress source systems
    lanling rotate-keys [SERVICE ...] [--dry-run]   re-encrypt stored personal data under the newest key
    lanling makemigrations SERVICE -m MESSAGE
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

from services.common import config

ALL = ("intake", "routing", "mediation", "psych", "notify", "gateway")


def _say(message: str) -> None:
    print(f"lanling: {message}", flush=True)


# -- infrastructure checks ------------------------------------------------------
def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_rabbitmq(timeout: float = 90.0) -> None:
    uri = urlparse(config.get("AMQP_URI"))
    host, port = uri.hostname or "127.0.0.1", uri.port or 5672
    if _port_open(host, port):
        return
    if host not in ("127.0.0.1", "localhost") or not shutil.which("rabbitmq-server"):
        sys.exit(f"lanling: RabbitMQ is not reachable at {host}:{port}. Install and start it "
                 f"(Debian: apt install rabbitmq-server), or set AMQP_URI.")
    _say("starting RabbitMQ (rabbitmq-server -detached)")
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            subprocess.run(["rabbitmqctl", "await_startup"], check=False, capture_output=True)
            return
        time.sleep(0.5)
    sys.exit(f"lanling: RabbitMQ did not start within {timeout:.0f} s")


def ensure_management(timeout: float = 60.0) -> None:
    """The test suites and the benchmark create a vhost per test through the management API."""
    api = urlparse(os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672"))
    host, port = api.hostname or "127.0.0.1", api.port or 15672
    if _port_open(host, port):
        return
    if host not in ("127.0.0.1", "localhost") or not shutil.which("rabbitmq-plugins"):
        sys.exit(f"lanling: the RabbitMQ management API is not reachable at {host}:{port}; "
                 "enable it with `rabbitmq-plugins enable rabbitmq_management` or set RABBIT_API_URI")
    _say("enabling the RabbitMQ management plugin")
    subprocess.run(["rabbitmq-plugins", "-q", "enable", "rabbitmq_management"], check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        time.sleep(0.5)
    sys.exit(f"lanling: the RabbitMQ management API did not come up within {timeout:.0f} s")


def cmd_check_broker(args) -> None:
    ensure_rabbitmq()
    if args.management:
        ensure_management()


def _parse_scale(specs: list[str]) -> dict[str, int]:
    scale = {}
    for spec in specs or ALL:
        name, _, count = spec.partition("=")
        if name not in ALL:
            sys.exit(f"lanling: unknown service {name!r}; services are {', '.join(ALL)}")
        scale[name] = int(count or 1)
    return scale


# -- commands ------------------------------------------------------------------
def cmd_migrate(args) -> None:
    from services.common.migrate import upgrade

    for service in args.services or ALL:
        upgrade(service)
        _say(f"migrated {service} ({_safe_url(config.db_url(service))})")


def _safe_url(url: str) -> str:
    parsed = urlparse(url)
    return url.replace(parsed.password, "***") if parsed.password else url


def cmd_declare(_args=None) -> None:
    from services.common.broker import ConfirmedPublisher

    publisher = ConfirmedPublisher(config.get("AMQP_URI"))
    publisher.declare_topology()
    publisher.close()
    _say("declared the broker topology")


def cmd_load_reference(_args=None) -> None:
    from services.bootstrap import load_reference

    for line in load_reference(force=bool(getattr(_args, "force", False))):
        _say(line)


def cmd_run(args) -> None:
    from honcho.manager import Manager

    scale = _parse_scale(args.services)
    ensure_rabbitmq()
    for name in ("LANLING_DATA_KEYS", "LANLING_HASH_KEY", "LANLING_TOKEN_SECRET", "LANLING_API_KEY",
                 "LANLING_STAFF_INITIAL_PASSWORD"):
        config.secret(name)  # create once, before the children read them
    cmd_migrate(argparse.Namespace(services=list(scale)))
    cmd_declare()
    if set(scale) == set(ALL):
        cmd_load_reference()
    manager = Manager()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name, count in scale.items():
        for i in range(1, count + 1):
            label = name if count == 1 else f"{name}.{i}"
            manager.add_process(label, f"{sys.executable} -m services.common.runner {name}", env=env,
                                cwd=str(config.ROOT))
    if "gateway" in scale:
        address = config.get("GATEWAY_ADDRESS")
        key_note = "(LANLING_API_KEY)" if os.environ.get("LANLING_API_KEY") else \
            f"(stored in {config.var_dir() / 'secrets' / 'LANLING_API_KEY'})"
        _say(f"gateway on http://{address}  operator API key {key_note}:")
        print(f"    {config.secret('LANLING_API_KEY')}", flush=True)
        _say("staff accounts' initial password is in var/secrets/LANLING_STAFF_INITIAL_PASSWORD; Ctrl-C stops all")
    manager.loop()
    sys.exit(manager.returncode)


def cmd_classify(args) -> None:
    from services.routing.explain import classify_lines

    for line in classify_lines(sys.stdin):
        print(json.dumps(line, ensure_ascii=False), flush=True)


def cmd_demo(args) -> None:
    from services.demo import run_demo

    run_demo(base_url=args.url, api_key=args.api_key or config.secret("LANLING_API_KEY"), count=args.count)


def cmd_dlq(args) -> None:
    from services.common import dlq

    if args.action == "list":
        for item in dlq.list_dead(args.queue):
            print(json.dumps(item, ensure_ascii=False, default=str))
    else:
        count = dlq.replay(args.queue, message_id=args.id)
        _say(f"replayed {count} message(s)")


def cmd_apikey(args) -> None:
    from services.gateway.bootstrap import create_api_key

    key = create_api_key(args.name, [c for c in args.channels.split(",") if c])
    _say(f"API key for {args.name} (shown once, stored hashed):")
    print(key)


def cmd_sources(args) -> None:
    from services.intake import admin

    if args.action == "list":
        for system in admin.list_source_systems():
            print(json.dumps(system, ensure_ascii=False))
        return
    if not args.broker_user:
        sys.exit("lanling: name the broker user")
    if args.action == "disable":
        _say(f"{args.broker_user} disabled" if admin.disable_source_system(args.broker_user)
             else f"{args.broker_user} is not an active source system")
        return
    if not args.channels:
        sys.exit("lanling: --channels is required, e.g. --channels hotline,petition")
    system = admin.add_source_system(args.broker_user, [c for c in args.channels.split(",") if c], args.description)
    _say(f"source system {system['broker_user']} may submit on: {', '.join(system['channels'])}")
    _say("create its broker user with least privilege (once, on the broker):")
    for line in admin.broker_commands(args.broker_user):
        print(f"    {line}")


def cmd_rotate_keys(args) -> None:
    from services.common import rotation

    keys = [k for k in config.secret("LANLING_DATA_KEYS").split(",") if k.strip()]
    _say(f"{len(keys)} data key(s) configured; re-encrypting under the first" + (" (dry run)" if args.dry_run else ""))
    left = 0
    for report in rotation.rotate_all(tuple(args.services or rotation.SERVICES_WITH_DATA), dry_run=args.dry_run):
        _say(report.line())
        left += report.left
    if left:
        _say(f"{left} value(s) still under an old key: " + ("run without --dry-run" if args.dry_run else "run again"))
        sys.exit(1)
    _say("every stored value is under the newest key; the old keys may now be removed (docs/security.md)")


def cmd_makemigrations(args) -> None:
    from services.common.migrate import make_revision

    make_revision(args.service, args.message)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="lanling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="set up and start services (all by default); NAME=N runs N replicas")
    p.add_argument("services", nargs="*")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("services", nargs="*")
    p.set_defaults(func=cmd_migrate)
    sub.add_parser("declare", help="declare the broker topology").set_defaults(func=cmd_declare)
    p = sub.add_parser("check-broker", help="start RabbitMQ if it is local and stopped")
    p.add_argument("--management", action="store_true", help="also enable the management API (tests, bench)")
    p.set_defaults(func=cmd_check_broker)
    p = sub.add_parser("load-reference", help="load reference data (idempotent; keeps staff roster edits)")
    p.add_argument("--force", action="store_true", help="replace the directory even if staff have edited it")
    p.set_defaults(func=cmd_load_reference)
    sub.add_parser("classify", help="classify JSON lines from stdin").set_defaults(func=cmd_classify)
    p = sub.add_parser("demo", help="replay a realistic day of cases through every channel")
    p.add_argument("--url", default=f"http://{config.get('GATEWAY_ADDRESS')}")
    p.add_argument("--api-key")
    p.add_argument("--count", type=int, default=200)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("dlq", help="list or replay dead letters")
    p.add_argument("action", choices=("list", "replay"))
    p.add_argument("--queue", help="e.g. routing.dead or intake.ingress.dead (default: all)")
    p.add_argument("--id", help="replay only this message id")
    p.set_defaults(func=cmd_dlq)
    p = sub.add_parser("apikey", help="create a source system's API key")
    p.add_argument("action", choices=("create",))
    p.add_argument("name")
    p.add_argument("--channels", required=True, help="comma-separated channels it may submit on")
    p.set_defaults(func=cmd_apikey)
    p = sub.add_parser("sources", help="source systems allowed on the AMQP ingress (broker user -> channels)")
    p.add_argument("action", choices=("add", "list", "disable"))
    p.add_argument("broker_user", nargs="?")
    p.add_argument("--channels", help="comma-separated channels it may submit on (add)")
    p.add_argument("--description")
    p.set_defaults(func=cmd_sources)
    p = sub.add_parser("rotate-keys", help="re-encrypt stored personal data under the newest LANLING_DATA_KEYS key")
    p.add_argument("services", nargs="*", help="services (default: all)")
    p.add_argument("--dry-run", action="store_true", help="only count what is still under an old key")
    p.set_defaults(func=cmd_rotate_keys)
    p = sub.add_parser("makemigrations", help="autogenerate a migration for a service")
    p.add_argument("service", choices=ALL)
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(func=cmd_makemigrations)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
