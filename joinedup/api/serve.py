"""Serving the lookup API with uvicorn, in one process or several worker processes.

A search is CPU work in Python (comparing a few hundred candidate records), so one process
uses one core however many clients wait: ``workers`` > 1 runs that many processes behind one
port. uvicorn then needs an import string, not an app object, so each worker builds its app
with ``app_from_environment`` from the settings below (set in the environment by ``serve``).

The rate limit is kept per process: with N workers a key may reach up to N times the rate
(``joinedup api serve --rate`` is per worker; divide the rate you want by N).
"""
from __future__ import annotations

import os

from fastapi import FastAPI

RATE_ENV = "JOINEDUP_API_RATE"
BURST_ENV = "JOINEDUP_API_BURST"
FACTORY = "joinedup.api.serve:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app for one worker: the MCI at JOINEDUP_DB_URL, the rate limit from the environment."""
    from joinedup.api.app import create_api

    try:
        rate = float(os.environ.get(RATE_ENV, "50"))
        burst = int(os.environ.get(BURST_ENV, "100"))
    except ValueError as exc:
        raise ValueError(f"{RATE_ENV} must be a number and {BURST_ENV} an integer ({exc})") from None
    return create_api(rate_per_second=rate, burst=burst)


def serve(host: str = "127.0.0.1", port: int = 8770, *, workers: int = 1, rate: float = 50.0,
          burst: int = 100, log_level: str = "warning") -> None:
    """Run uvicorn until stopped; ``workers`` processes share the port."""
    import uvicorn

    if workers < 1:
        raise ValueError(f"workers must be 1 or more, got {workers}")
    os.environ[RATE_ENV], os.environ[BURST_ENV] = repr(float(rate)), str(int(burst))
    if workers == 1:
        app = app_from_environment()  # built here, so a broken database fails before listening
        uvicorn.run(app, host=host, port=port, proxy_headers=True, server_header=False, log_level=log_level)
    else:
        app_from_environment()  # once here too: the schema is upgraded before the workers race to it
        uvicorn.run(FACTORY, factory=True, workers=workers, host=host, port=port, proxy_headers=True,
                    server_header=False, log_level=log_level)
