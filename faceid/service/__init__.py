"""The HTTP service (``faceid serve``): :mod:`faceid.service.app` (endpoints, keys, errors)
and :mod:`faceid.service.metrics` (Prometheus-style counters)."""
