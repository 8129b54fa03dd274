"""Container healthcheck: `python -m services.common.healthcheck SERVICE` exits 0 when it answers."""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from services.common import config  # noqa: E402


def main() -> int:
    service = sys.argv[1]
    try:
        with eventlet.Timeout(5), ClusterRpcProxy({"AMQP_URI": config.get("AMQP_URI")}) as cluster:
            answer = getattr(cluster, service).health()
    except BaseException as exc:  # noqa: BLE001 - any failure means unhealthy
        print(f"{service}: unhealthy ({exc!r})")
        return 1
    print(f"{service}: {answer}")
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
