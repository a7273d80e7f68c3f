import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from crm.roles import MARKETERS, roles_sync
from tests.crm.factories import (
    CategoryFactory,
    CustomerFactory,
    LoyaltyCardFactory,
    ProductFactory,
    StoreFactory,
    UserFactory,
)


@pytest.fixture
def eager_celery(settings):
    """Run Celery tasks in-process (the tests run with REDIS_URL set, so not eager)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def store(db):
    return StoreFactory(code="ams", name="Loyalist Amsterdam", city="Amsterdam")


@pytest.fixture
def other_store(db):
    return StoreFactory(code="utr", name="Loyalist Utrecht", city="Utrecht")


@pytest.fixture
def shoes(db):
    return CategoryFactory(name="Shoes", slug="shoes")


@pytest.fixture
def products(db, shoes):
    bags = CategoryFactory(name="Bags", slug="bags")
    return {
        "SHOE-1": ProductFactory(sku="SHOE-1", category=shoes, price="59.95"),
        "SHOE-2": ProductFactory(sku="SHOE-2", category=shoes, price="89.00"),
        "BAG-1": ProductFactory(sku="BAG-1", category=bags, price="24.50"),
    }


@pytest.fixture
def customer(db):
    return CustomerFactory(email="joe@example.com", first_name="Joe")


@pytest.fixture
def card(db, customer):
    return LoyaltyCardFactory(customer=customer)


@pytest.fixture
def clerk(db, store):
    from crm.models import StaffMember

    user = UserFactory(username="clerk")
    StaffMember.objects.create(user=user, store=store)
    return user


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


def user_in_group(username: str, group: str, **fields):
    """A user in one of the roles of crm/roles.py (synced first)."""
    roles_sync()
    user = UserFactory(username=username, **fields)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def marketer_client(client):
    """The test client signed in as a staff user of the Marketers role."""
    client.force_login(user_in_group("marketer", MARKETERS, is_staff=True))
    return client


# Headless Chromium for the browser tests: Debian's package, driven by Playwright.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where the browser tests save their screenshots: the README's
    docs/screenshots/ with LOYALIST_SCREENSHOTS=1 set, else a temporary folder, so
    a test run leaves the checkout as it found it."""
    if os.environ.get("LOYALIST_SCREENSHOTS") == "1":
        folder = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls a test
    # makes around it are safe because the browser runs in another process. Set
    # for the browser tests only, so it never leaks into the rest of the session.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()
