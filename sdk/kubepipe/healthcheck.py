"""Container health for `docker run` (Kubernetes uses the pod's probes instead).

The runtime images run `python -m kubepipe.healthcheck`: it ships inside the package,
so no build context has to carry it. A container that serves (`kubepipe serve`) must
answer /v2/health/live; a pipeline-task container has no server, and is healthy when
kubepipe imports.
"""

import http.client
import os
import socket
import sys

__all__ = ["main"]

PORT = int(os.environ.get("KUBEPIPE_HEALTH_PORT", "8080"))


def main() -> int:
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
    except OSError:
        import kubepipe  # noqa: F401  - no server here: the SDK must at least load

        return 0
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3)
    try:
        conn.request("GET", "/v2/health/live")
        return 0 if conn.getresponse().status == 200 else 1
    except OSError:
        return 1
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
