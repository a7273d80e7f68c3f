"""Loyalist's benchmark harness: `manage.py bench desk|api|segments`.

Not product code: it seeds databases, starts gunicorn and Celery workers and drives
them, so it lives in the source checkout and `pyproject.toml` does not ship it. The
settings install it as a Django app (for its `bench` command) only when it is there.
"""
