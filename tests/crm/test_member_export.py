"""The member export: consented contact details only, one query, every export logged."""

import csv
import io
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.exports import (
    EXPORT_CHANNELS,
    member_export_lines,
    member_export_response,
    member_export_rows,
)
from crm.models import Channel, Consent, Customer, CustomerStats, MemberExport
from crm.services import member_export_start
from tests.crm.factories import CustomerFactory, StoreFactory, UserFactory

consent_st = st.tuples(
    st.sampled_from(list(Channel)),
    st.sampled_from([Consent.Status.GRANTED, Consent.Status.WITHDRAWN]),
    # Hours ago; few values, so equal timestamps (ties broken by id) happen.
    st.integers(min_value=0, max_value=3),
)
customer_st = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "phone": st.booleans(),
        "post": st.booleans(),
        "orders": st.none() | st.integers(min_value=1, max_value=9),
        "consents": st.lists(consent_st, max_size=6),
    }
)


def write(plans: list[dict], now) -> list[Customer]:
    customers = []
    for i, plan in enumerate(plans):
        customer = Customer.objects.create(
            email=f"c{i}@example.com" if plan["email"] else None,
            phone=f"+3161234567{i % 10}" if plan["phone"] else "",
            first_name=f"First{i}",
            last_name=f"Last{i}",
            address=f"Oudegracht {i + 1}" if plan["post"] else "",
            postal_code="3511 AB",
            city="Utrecht",
        )
        if plan["orders"] is not None:
            CustomerStats.objects.create(
                customer=customer,
                orders=plan["orders"],
                total_spent=Decimal("12.50") * plan["orders"],
                last_purchase_at=now - timedelta(days=plan["orders"]),
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
        customers.append(customer)
    return customers


def granted_now(plan: dict, channel: str) -> bool:
    entries = [
        (-hours, index, status)
        for index, (ch, status, hours) in enumerate(plan["consents"])
        if ch == channel
    ]
    return bool(entries) and max(entries)[2] == Consent.Status.GRANTED


def oracle_row(customer: Customer, plan: dict, now, channels) -> list[str]:
    orders = plan["orders"]
    row = [
        str(customer.pk),
        customer.first_name,
        customer.last_name,
        "Utrecht",
        str(orders or 0),
        str(Decimal("12.50") * orders) if orders else "0.00",
        timezone.localdate(now - timedelta(days=orders)).isoformat() if orders else "",
    ]
    if Channel.EMAIL in channels:
        email = granted_now(plan, "email") and plan["email"]
        row.append(customer.email if email else "")
    if Channel.SMS in channels:
        sms = granted_now(plan, "sms") and plan["phone"]
        row.append(str(customer.phone) if sms else "")
    if Channel.POST in channels:
        post = granted_now(plan, "post") and plan["post"]
        row += [customer.address, "3511 AB"] if post else ["", ""]
    return row


def exported(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(customer_st, max_size=6),
    channels=st.sets(st.sampled_from(EXPORT_CHANNELS)),
)
@pytest.mark.django_db
def test_contact_details_are_filled_exactly_where_consent_is_granted_now(
    plans, channels
):
    with transaction.atomic():
        now = timezone.now()
        user = UserFactory(username="exporter")
        customers = write(plans, now)
        Customer.objects.create(first_name="Not", last_name="Member", city="Gouda")
        members = Customer.objects.filter(pk__in=[c.pk for c in customers])
        chosen = [c for c in EXPORT_CHANNELS if c in channels] or list(EXPORT_CHANNELS)

        rows = exported(
            member_export_response(
                user=user, exported=StoreFactory(), members=members, channels=chosen
            )
        )

        assert rows[1:] == [
            oracle_row(customer, plan, now, chosen)
            for customer, plan in sorted(
                zip(customers, plans, strict=True), key=lambda pair: pair[0].pk
            )
        ]
        assert len(rows[0]) == 7 + sum(
            {"email": 1, "sms": 1, "post": 2}[c] for c in chosen
        )
        log = MemberExport.objects.get()
        assert (log.rows, log.exported_by, log.channels) == (
            len(plans),
            user,
            [str(c) for c in chosen],
        )
        transaction.set_rollback(True)


def test_a_later_withdrawal_blanks_the_email_and_a_later_grant_fills_it(db):
    user = UserFactory()
    customer = CustomerFactory(email="ann@example.com", phone="+31612345678")
    then = timezone.now() - timedelta(days=2)
    for status, moment in [
        (Consent.Status.GRANTED, then),
        (Consent.Status.WITHDRAWN, then + timedelta(days=1)),
        (Consent.Status.GRANTED, then - timedelta(days=5)),  # older, recorded late
    ]:
        Consent.objects.create(
            customer=customer,
            channel=Channel.EMAIL,
            status=status,
            recorded_at=moment,
            source=Consent.Source.STORE,
            wording="Offers, please",
        )
    members = Customer.objects.filter(pk=customer.pk)

    rows = exported(
        member_export_response(user=user, exported=StoreFactory(), members=members)
    )

    assert rows[1][7:] == ["", "", "", ""]


def test_the_export_reads_its_rows_in_a_fixed_number_of_queries(
    db, django_assert_num_queries
):
    user = UserFactory()
    store = StoreFactory()
    customers = CustomerFactory.create_batch(50)
    for customer in customers[::2]:
        Consent.objects.create(
            customer=customer,
            channel=Channel.EMAIL,
            status=Consent.Status.GRANTED,
            source=Consent.Source.STORE,
            wording="Offers, please",
        )
    ids = [c.pk for c in customers]
    exported(
        member_export_response(
            user=user, exported=store, members=Customer.objects.none()
        )
    )

    counts = []
    for members in (ids[:3], ids):
        # The log's insert (in a savepoint), the rows, the log's update.
        with django_assert_num_queries(7):
            rows = exported(
                member_export_response(
                    user=user,
                    exported=store,
                    members=Customer.objects.filter(pk__in=members),
                )
            )
        counts.append(len(rows) - 1)

    assert counts == [3, 50]
    assert list(MemberExport.objects.order_by("id").values_list("rows", flat=True)) == [
        0,
        3,
        50,
    ]


def test_a_download_stopped_half_way_logs_the_rows_that_left(db):
    user = UserFactory()
    customers = CustomerFactory.create_batch(5)
    store = StoreFactory()
    export = member_export_start(user=user, exported=store, channels=EXPORT_CHANNELS)
    members = Customer.objects.filter(pk__in=[c.pk for c in customers])
    lines = member_export_lines(
        export=export,
        rows=member_export_rows(members=members),
        channels=EXPORT_CHANNELS,
    )

    next(lines)  # the header
    next(lines)
    next(lines)
    # What the server does when the client goes away (response.close() would
    # also end the test's connection through request_finished).
    lines.close()

    log = MemberExport.objects.get()
    assert (log.rows, log.finished_at) == (2, None)


def test_no_personal_value_reaches_the_logs(db, caplog):
    user = UserFactory()
    customer = CustomerFactory(
        email="secret.person@example.com", first_name="Secretia", phone="+31612345678"
    )
    Consent.objects.create(
        customer=customer,
        channel=Channel.EMAIL,
        status=Consent.Status.GRANTED,
        source=Consent.Source.STORE,
        wording="Offers, please",
    )
    caplog.set_level(logging.DEBUG)

    rows = exported(
        member_export_response(
            user=user,
            exported=StoreFactory(name="Amsterdam"),
            members=Customer.objects.filter(pk=customer.pk),
        )
    )

    assert rows[1][7] == "secret.person@example.com"
    logged = " ".join(record.getMessage() for record in caplog.records)
    for value in ("secret.person", "Secretia", "612345678"):
        assert value not in logged
    log = MemberExport.objects.get()
    assert "Secretia" not in f"{log.label} {log.channels}"


def test_a_name_written_as_a_formula_is_exported_as_text(db):
    customer = CustomerFactory(first_name="=HYPERLINK(1)", last_name="@SUM", city="-")

    rows = exported(
        member_export_response(
            user=UserFactory(),
            exported=StoreFactory(),
            members=Customer.objects.filter(pk=customer.pk),
        )
    )

    assert rows[1][1:4] == ["'=HYPERLINK(1)", "'@SUM", "'-"]
