"""Who this process is among the replicas of one deployment: the name its leases and log lines carry."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def replica_name(env: Mapping[str, str] | None = None) -> str:
    """`SLO_BOT_REPLICA`, else host and process id (in Kubernetes the host is the pod's name)."""
    env = os.environ if env is None else env
    return env.get("SLO_BOT_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"
