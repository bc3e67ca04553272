"""``GET /metrics`` lines of the connect gateway, read from it at scrape time (nothing kept in step).

* ``agentcmd_connect_workers{status}``: connected workers by status (connected, ready, draining);
* ``agentcmd_connect_calls_total``: SDK calls the gateway was asked to run (sent or answered interrupted);
* ``agentcmd_connect_requests_in_flight``: requests sent to workers and not answered yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from agentcmd.engine.connect.gateway import Gateway


class ConnectCollector:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Any]:
        workers = GaugeMetricFamily("agentcmd_connect_workers", "Connected connect workers, by status",
                                    labels=["status"])
        counts = Counter(w.status for w in self.gateway.workers())
        for status in ("connected", "ready", "draining"):
            workers.add_metric([status], counts.get(status, 0))
        yield workers
        yield CounterMetricFamily("agentcmd_connect_calls", "SDK calls run over the connect gateway",
                                  value=self.gateway.calls)
        yield GaugeMetricFamily("agentcmd_connect_requests_in_flight",
                                "Requests sent to connect workers and not answered yet",
                                value=len(self.gateway.pending))

    def describe(self) -> list[Any]:
        return []
