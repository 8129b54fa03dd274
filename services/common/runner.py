"""Run services in this process: `python -m services.common.runner intake [routing ...]`.

eventlet must patch the standard library before anything else is imported.
"""
import warnings

# eventlet and pkg_resources (imported by nameko and jieba) announce their deprecation on every start
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import importlib  # noqa: E402
import sys  # noqa: E402

SERVICE_CLASSES = {
    "intake": "services.intake.service:IntakeService",
    "routing": "services.routing.service:RoutingService",
    "mediation": "services.mediation.service:MediationService",
    "psych": "services.psych.service:PsychService",
    "notify": "services.notify.service:NotifyService",
    "gateway": "services.gateway.service:GatewayService",
}


def service_class(name: str):
    module, cls = SERVICE_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def patch_for_postgres(conf: dict) -> None:
    if any(url.startswith("postgresql") for url in conf["DATABASES"].values()):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()


def main(argv=None) -> None:
    from nameko.cli.run import run

    from services.common import config, logs

    names = list(argv if argv is not None else sys.argv[1:])
    unknown = [n for n in names if n not in SERVICE_CLASSES]
    if not names or unknown:
        sys.exit(f"usage: python -m services.common.runner SERVICE... (one of {', '.join(SERVICE_CLASSES)})")
    logs.configure("+".join(names))
    conf = config.nameko_config()
    patch_for_postgres(conf)
    run([service_class(n) for n in names], conf)


if __name__ == "__main__":
    main()
