"""Counters for ``/metrics`` in the Prometheus text format: requests by route and status,
their latency (sum, count and a cumulative histogram), and decisions by kind and reason.
Written here (about 50 lines) rather than taking prometheus_client for three metric
families; the format is the documented text exposition format."""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency_sum: Counter[str] = Counter()
        self.latency_count: Counter[str] = Counter()
        self.latency_buckets: Counter[tuple[str, float]] = Counter()
        self.decisions: Counter[tuple[str, str, str]] = Counter()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1
            for bound in BUCKETS:
                if seconds <= bound:
                    self.latency_buckets[(route, bound)] += 1

    def decision(self, kind: str, decision: str, reason: str) -> None:
        with self._lock:
            self.decisions[(kind, decision, reason)] += 1

    def render(self) -> str:
        with self._lock:
            lines = ["# TYPE faceid_requests_total counter"]
            lines += [f'faceid_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}'
                      for (m, r, s), n in sorted(self.requests.items())]
            lines.append("# TYPE faceid_request_seconds histogram")
            for route in sorted(self.latency_count):
                for bound in BUCKETS:
                    lines.append(f'faceid_request_seconds_bucket{{route="{route}",le="{bound}"}} '
                                 f"{self.latency_buckets[(route, bound)]}")
                count = self.latency_count[route]
                lines.append(f'faceid_request_seconds_bucket{{route="{route}",le="+Inf"}} {count}')
                lines.append(f'faceid_request_seconds_sum{{route="{route}"}} '
                             f"{self.latency_sum[route]:.6f}")
                lines.append(f'faceid_request_seconds_count{{route="{route}"}} {count}')
            lines.append("# TYPE faceid_decisions_total counter")
            lines += [f'faceid_decisions_total{{kind="{k}",decision="{d}",reason="{r}"}} {n}'
                      for (k, d, r), n in sorted(self.decisions.items())]
            return "\n".join(lines) + "\n"
