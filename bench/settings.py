"""The benchmark's settings: the project's, plus a peer library measured side by side."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "simple_history", "bench.peers"]
# The peer's history table is a subject of comparison, not an audited model.
AUDIT_IGNORE_MODELS = ["peers.historicaluser"]
