"""docker-compose.yml cannot run here (no Docker engine), so it is parsed and checked."""
from __future__ import annotations

import re

import yaml

from services.common import config
from services.common.runner import SERVICE_CLASSES, service_class

COMPOSE = config.ROOT / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_every_service_runs_real_code_from_the_one_image():
    services = compose()["services"]
    for name in SERVICE_CLASSES:
        spec = services[name]
        assert spec["command"] == ["python", "-m", "services.common.runner", name]
        assert spec["image"] == "lanling:latest"
        assert service_class(name).name == name
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in spec


def test_services_can_be_scaled():
    for name, spec in compose()["services"].items():
        assert "container_name" not in spec, f"{name} has a fixed container name and cannot be scaled"
        for port in spec.get("ports", []):
            host = str(port).split(":")[0]
            assert "-" in host or name in ("rabbitmq", "postgres"), f"{name} binds one host port and cannot scale"


def test_migrations_run_before_services_and_every_command_exists():
    from services.cli import main  # noqa: F401 - the console script the image runs

    migrate = compose()["services"]["migrate"]
    steps = re.findall(r"lanling ([a-z-]+)", " ".join(migrate["command"]))
    assert steps == ["migrate", "declare", "load-reference"]
    assert migrate["restart"] == "no"


def test_healthchecks_call_modules_that_exist():
    import importlib

    for name, spec in compose()["services"].items():
        test = spec.get("healthcheck", {}).get("test", [])
        if "-m" in test:
            importlib.import_module(test[test.index("-m") + 1])


def test_every_secret_comes_from_the_environment_file():
    text = COMPOSE.read_text(encoding="utf-8")
    example = (config.ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    for variable in set(re.findall(r"\$\{([A-Z_]+):\?", text)):
        assert f"{variable}=" in example, f"{variable} is required by compose but missing from deploy/env.example"


def test_the_postgres_init_creates_a_database_per_service():
    init = (config.ROOT / "deploy" / "postgres" / "init.sql").read_text()
    for name in SERVICE_CLASSES:
        assert f"CREATE DATABASE lanling_{name};" in init


def test_every_service_connects_as_its_own_least_privilege_broker_user():
    import json

    from services.common import broker_users

    services = compose()["services"]
    definitions = json.loads((config.ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    users = {u["name"] for u in definitions["users"]}
    for name in SERVICE_CLASSES:
        env = services[name]["environment"]
        user = broker_users.service_user(name)
        assert env["AMQP_URI"].startswith(f"amqp://{user}:"), name
        # (nameko test's YAML loader resolves ${…} itself: the variable is checked in the raw text)
        assert f"amqp://{user}:${{LANLING_BROKER_PASSWORD_{name.upper()}:?" in COMPOSE.read_text(), name
        assert env["BROKER_DECLARE"] == "own"
        assert user in users
    assert services["migrate"]["environment"]["AMQP_URI"].startswith("amqp://lanling:")  # the admin declares


def test_the_broker_loads_the_definitions_and_sets_every_password_from_the_environment():
    import json

    rabbit = compose()["services"]["rabbitmq"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in rabbit["volumes"] if volume.startswith("./")}
    assert mounts["/etc/rabbitmq/definitions.json"] == "./deploy/rabbitmq/definitions.json"
    conf = (config.ROOT / mounts["/etc/rabbitmq/conf.d/20-lanling.conf"]).read_text()
    assert "management.load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert rabbit["command"] == ["sh", "/etc/rabbitmq/set-passwords.sh"]
    script = (config.ROOT / "deploy" / "rabbitmq" / "set-passwords.sh").read_text()
    definitions = json.loads((config.ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    for user in definitions["users"]:
        assert user["password_hash"] == ""  # no password in the repository
        name = user["name"]
        if name == "lanling":
            assert "set_password lanling" in script
        else:
            kind, _, rest = name.partition("-")
            variable = ("LANLING_BROKER_PASSWORD_" + ("SOURCE_" if kind == "source" else "") + rest.upper())
            assert variable.rsplit("_", 1)[1].lower() in script, name
            assert variable in rabbit["environment"], variable
