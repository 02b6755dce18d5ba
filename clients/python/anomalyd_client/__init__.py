"""Python client for anomalyd: score numpy arrays, query stored anomalies,
follow alerts. See clients/python/example.py."""

from .client import AnomalydError, Client

__all__ = ["AnomalydError", "Client"]
