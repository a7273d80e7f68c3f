"""The staff home page: its core figures against a plain-Python oracle, its query
counts cold and warm, and who sees which cards."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.dashboard import (
    CHANNEL_ADDRESSES,
    core_figures,
)
from crm.formats import change_text, money_rounded
from crm.models import (
    Channel,
    Consent,
    Customer,
    CustomerStats,
    PushToken,
    Receipt,
)
from crm.roles import CLERKS
from segments.models import RfmThresholds
from tests.crm.factories import StoreFactory, UserFactory

CHANNELS = list(CHANNEL_ADDRESSES)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


consent_st = st.tuples(
    st.sampled_from(CHANNELS),
    st.sampled_from([Consent.Status.GRANTED, Consent.Status.WITHDRAWN]),
    # Hours ago; few values, so equal timestamps (ties broken by id) happen.
    st.integers(min_value=0, max_value=4),
)
receipt_st = st.tuples(
    st.integers(min_value=0, max_value=70),  # days ago
    st.decimals(min_value=0, max_value=500, places=2),
    st.booleans(),  # voided
)
customer_st = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "phone": st.booleans(),
        "post": st.booleans(),
        # A push token: none, a live one, or one the provider revoked.
        "push": st.sampled_from(["none", "live", "revoked"]),
        "last_purchase_days": st.none() | st.integers(min_value=0, max_value=120),
        "consents": st.lists(consent_st, max_size=5),
        "receipts": st.lists(receipt_st, max_size=4),
    }
)


def has_address(plan: dict, channel: str) -> bool:
    return {
        Channel.EMAIL: plan["email"],
        Channel.SMS: plan["phone"],
        Channel.PUSH: plan["push"] == "live",
        Channel.SOCIAL_ADS: plan["email"] or plan["phone"],
        Channel.POST: plan["post"],
    }[channel]


def write(plans: list[dict], now) -> None:
    store = StoreFactory()
    for i, plan in enumerate(plans):
        customer = Customer.objects.create(
            email=f"c{i}@example.com" if plan["email"] else None,
            phone="+31612345678" if plan["phone"] else "",
            address="Oudegracht 1" if plan["post"] else "",
            postal_code="3511 AB",
            city="Utrecht",
        )
        if plan["push"] != "none":
            PushToken.objects.create(
                customer=customer,
                token=f"device-{i}",
                platform=PushToken.Platform.ANDROID,
                revoked_at=now if plan["push"] == "revoked" else None,
            )
        last = plan["last_purchase_days"]
        CustomerStats.objects.create(
            customer=customer,
            orders=0 if last is None else 1,
            last_purchase_at=None if last is None else now - timedelta(days=last),
        )
        # Created in list order: a later entry with the same timestamp is newer.
        for channel, status, hours in plan["consents"]:
            Consent.objects.create(
                customer=customer,
                channel=channel,
                status=status,
                recorded_at=now - timedelta(hours=hours),
                source=Consent.Source.STORE,
                wording="Offers, please",
            )
        for j, (days, total, voided) in enumerate(plan["receipts"]):
            Receipt.objects.create(
                number=f"{i}-{j}",
                store=store,
                customer=customer,
                purchased_at=now - timedelta(days=days, minutes=1),
                total=total,
                payment_method=Receipt.PaymentMethod.CARD,
                status="voided" if voided else "completed",
                voided_at=now if voided else None,
            )


def oracle(plans: list[dict]) -> dict:
    active = {
        days: sum(
            1
            for plan in plans
            if plan["last_purchase_days"] is not None
            and plan["last_purchase_days"] <= days
        )
        for days in (30, 90)
    }
    revenue = {"current": Decimal("0"), "previous": Decimal("0")}
    orders = {"current": 0, "previous": 0}
    for plan in plans:
        for days, total, voided in plan["receipts"]:
            if voided or days >= 60:
                continue
            period = "current" if days < 30 else "previous"
            revenue[period] += total
            orders[period] += 1
    reach = {}
    for channel in CHANNELS:
        consented = reachable = 0
        for plan in plans:
            entries = [
                (-hours, index, status)
                for index, (ch, status, hours) in enumerate(plan["consents"])
                if ch == channel
            ]
            if entries and max(entries)[2] == Consent.Status.GRANTED:
                consented += 1
                reachable += bool(has_address(plan, channel))
        reach[channel] = (consented, reachable)
    return {
        "customers": len(plans),
        "active": active,
        "revenue": revenue,
        "orders": orders,
        "reach": reach,
    }


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(customer_st, max_size=8))
@pytest.mark.django_db
def test_core_figures_agree_with_the_oracle(plans):
    with transaction.atomic():
        now = timezone.now()
        write(plans, now)

        figures = core_figures(now=now)
        expected = oracle(plans)

        assert figures.customers == expected["customers"]
        assert figures.active == expected["active"]
        assert figures.revenue_current == expected["revenue"]["current"]
        assert figures.revenue_previous == expected["revenue"]["previous"]
        assert figures.orders_current == expected["orders"]["current"]
        assert figures.orders_previous == expected["orders"]["previous"]
        assert {
            row.channel: (row.consented, row.reachable) for row in figures.reach
        } == expected["reach"]
        transaction.set_rollback(True)


def test_core_figures_take_four_queries(db, django_assert_num_queries):
    with django_assert_num_queries(4):
        core_figures()


def test_revenue_change_is_signed_and_has_its_currency(settings):
    settings.LOYALIST_CURRENCY = "EUR"

    assert money_rounded(Decimal("2368272.50")) == "EUR 2,368,273"
    assert money_rounded(Decimal("-0.49")) == "EUR 0"
    assert change_text(12.34) == "+12.3 %"
    assert change_text(-3.0) == "\u22123.0 %"
    assert change_text(None) == "-"


@given(cents=st.integers(min_value=-(10**11), max_value=10**11))
def test_money_rounded_rounds_halves_away_from_zero_like_an_oracle(cents):
    amount = Decimal(cents) / 100
    # Oracle: whole units by integer arithmetic, halves away from zero.
    whole, rest = divmod(abs(cents), 100)
    whole += rest >= 50
    sign = "\u2212" if cents < 0 and whole else ""

    assert money_rounded(amount) == f"{sign}EUR {whole:,}"


def signed_in(client, user):
    client.force_login(user)
    return client


def dashboard(client):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


# Session, user; then the core's four figures, then each app's panels (segments:
# sizes with movements, snapshots, thresholds, the RFM grid; personas: customers,
# revenue, personas); and the recent actions of the sidebar.
COLD_QUERIES = 2 + 4 + 4 + 3 + 1
WARM_QUERIES = 2 + 1


def test_admin_home_page_queries_cold_and_warm(
    client, admin_user, django_assert_num_queries
):
    RfmThresholds.objects.create(
        recency=[10, 30, 60, 120], frequency=[1, 2, 3, 5], monetary=[], customers=1
    )
    signed_in(client, admin_user)

    with django_assert_num_queries(COLD_QUERIES):
        cold = dashboard(client)
    with django_assert_num_queries(WARM_QUERIES):
        warm = dashboard(client)

    for page in (cold, warm):
        assert 'id="dashboard-customers"' in page
        assert "Figures as of" in page
        # The app list stays on the page, below the dashboard.
        assert 'class="app-crm module' in page


def test_figures_are_served_from_the_cache_until_it_expires(client, admin_user):
    signed_in(client, admin_user)
    dashboard(client)
    Customer.objects.create(email="new@example.com")

    assert core_figures().customers == 1
    assert '<a href="/admin/crm/customer/">0</a>' in dashboard(client)
    cache.clear()
    assert '<a href="/admin/crm/customer/">1</a>' in dashboard(client)


def test_marketer_sees_every_card(client, db):
    from crm.demo.users import demo_users_ensure

    StoreFactory()
    demo_users_ensure()
    from django.contrib.auth import get_user_model

    page = dashboard(
        signed_in(client, get_user_model().objects.get(username="marketer"))
    )

    for card in ("customers", "revenue", "reach", "segments", "movements", "rfm"):
        assert f'id="dashboard-{card}"' in page
    assert 'id="dashboard-personas"' in page


def test_staff_who_may_see_customers_only_get_the_core_cards(client, db):
    user = UserFactory(username="viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))

    page = dashboard(signed_in(client, user))

    assert 'id="dashboard-customers"' in page
    assert 'id="dashboard-segments"' not in page
    assert 'id="dashboard-personas"' not in page


def test_staff_without_customer_permission_get_the_app_list_only(client, db):
    user = UserFactory(username="nobody", is_staff=True)

    page = dashboard(signed_in(client, user))

    assert 'id="loyalist-dashboard-main"' not in page
    assert "have permission" in page
    assert "Figures as of" not in page


def test_a_clerk_given_staff_status_sees_the_core_and_no_segments(client, db):
    user = UserFactory(username="clerk-staff", is_staff=True)
    user.groups.add(Group.objects.get(name=CLERKS))

    page = dashboard(signed_in(client, user))

    assert 'id="dashboard-customers"' in page
    assert 'id="dashboard-rfm"' not in page
