"""Python client for anomalyd: score rows (lists or NumPy arrays), query
stored anomalies, follow alerts, manage models. See clients/python/example.py;
`python3 -m anomalyd_client --help` is a small command line."""

from .client import (DEFAULT_ALERTS, DEFAULT_CONTROL, DEFAULT_SCORE, AnomalydError,
                     Client, Rows, to_dataframe)

__all__ = ["AnomalydError", "Client", "Rows", "to_dataframe", "DEFAULT_SCORE",
           "DEFAULT_CONTROL", "DEFAULT_ALERTS"]
