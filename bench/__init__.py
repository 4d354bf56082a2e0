"""Benchmarks: run from the repository root as ``python -m bench.<name>``; they need the test
extras (dlib-bin as the peer), installed by ``scripts/setup.sh --test``."""
