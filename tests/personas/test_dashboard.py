"""The personas' dashboard card against a plain-Python oracle."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer, Receipt
from personas.dashboard import persona_rows
from personas.models import Persona, PersonaAssignment
from tests.crm.factories import StoreFactory


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


customer_st = st.tuples(
    st.none() | st.integers(min_value=0, max_value=2),  # persona index
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40),  # days ago
            st.decimals(min_value=0, max_value=300, places=2),
        ),
        max_size=3,
    ),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    statuses=st.lists(
        st.sampled_from([Persona.Status.ACTIVE, Persona.Status.RETIRED]),
        min_size=3,
        max_size=3,
    ),
    customers=st.lists(customer_st, max_size=10),
    anonymous=st.decimals(min_value=0, max_value=300, places=2),
)
@pytest.mark.django_db
def test_persona_rows_agree_with_the_oracle(statuses, customers, anonymous):
    with transaction.atomic():
        Persona.objects.all().delete()
        now = timezone.now()
        store = StoreFactory()
        personas = [
            Persona.objects.create(name=f"P{i}", slug=f"p{i}", status=status)
            for i, status in enumerate(statuses)
        ]
        number = 0
        for persona_index, receipts in customers:
            customer = Customer.objects.create()
            if persona_index is not None:
                PersonaAssignment.objects.create(
                    customer=customer,
                    persona=personas[persona_index],
                    assigned_at=now,
                )
            for days, total in receipts:
                number += 1
                Receipt.objects.create(
                    number=str(number),
                    store=store,
                    customer=customer,
                    purchased_at=now - timedelta(days=days, minutes=1),
                    total=total,
                    payment_method=Receipt.PaymentMethod.CARD,
                )
        # A sale to nobody known belongs to no persona row.
        Receipt.objects.create(
            number="anonymous",
            store=store,
            purchased_at=now - timedelta(days=1),
            total=anonymous,
            payment_method=Receipt.PaymentMethod.CARD,
        )

        rows = persona_rows(now=now)

        def group(persona_index):
            if persona_index is None or statuses[persona_index] != "active":
                return None
            return personas[persona_index].pk

        expected: dict = {
            p.pk: [0, Decimal("0")] for p in personas if p.status == "active"
        }
        expected[None] = [0, Decimal("0")]
        for persona_index, receipts in customers:
            row = expected[group(persona_index)]
            row[0] += 1
            row[1] += sum((t for days, t in receipts if days < 30), Decimal("0"))
        assert {row.pk: [row.customers, row.revenue] for row in rows} == expected
        assert rows[-1].pk is None
        transaction.set_rollback(True)


def test_persona_rows_take_three_queries(db, django_assert_num_queries):
    with django_assert_num_queries(3):
        persona_rows(now=timezone.now())
