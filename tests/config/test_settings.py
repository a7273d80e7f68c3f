"""Production settings refuse development defaults; the embedded default works."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 30 + "-production-secret-with-enough-entropy-0123456789"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "false"}, "SECRET_KEY is the development key"),
        ({"DEBUG": "true", "SECRET_KEY": STRONG_KEY}, "DEBUG must be off"),
        ({"DEBUG": "false", "SECRET_KEY": "short"}, "at least 50 characters"),
    ],
)
def test_production_settings_refuse_to_start_with_development_defaults(env, message):
    result = manage("check", DJANGO_SETTINGS_MODULE="config.settings.production", **env)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_pass_the_deployment_checks():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="crm.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_with_no_configuration_the_app_runs_embedded(tmp_path):
    environment_without = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
        "s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], s.EMAIL_BACKEND)",
        REDIS_URL="",
        **environment_without,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-5:] == [
        "django.db.backends.sqlite3",
        "True",
        "memory://",
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.mail.backends.console.EmailBackend",
    ]


def _database_options(**env: str) -> subprocess.CompletedProcess:
    return manage(
        "shell",
        "-c",
        "from django.conf import settings; "
        "o = settings.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'])",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        **env,
    )


@pytest.mark.parametrize(
    ("value", "printed"), [(None, "True 5"), ("2", "True 2"), ("", "True None")]
)
def test_postgresql_statements_are_prepared_unless_turned_off(value, printed):
    env = {} if value is None else {"DATABASE_PREPARE_THRESHOLD": value}
    result = _database_options(**env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == printed.split()


def test_a_prepare_threshold_that_is_no_number_is_refused_with_what_to_set():
    result = _database_options(DATABASE_PREPARE_THRESHOLD="yes")

    assert result.returncode != 0
    assert "DATABASE_PREPARE_THRESHOLD must be a whole number" in result.stderr
