"""Fixtures the CRM tests share."""

import pytest

from crm.models import Contact
from crm.services import (
    LineInput,
    consent_record,
    contact_record,
    customer_create,
    loyalty_card_issue,
    receipt_record,
)


@pytest.fixture
def joe(store, products):
    joe = customer_create(
        email="joe.bloggs@example.com",
        phone="+31612345678",
        first_name="Joe",
        last_name="Bloggs",
        city="Utrecht",
        postal_code="3511 AB",
        address="Oudegracht 1",
        occupation="Baker",
        home_store=store,
        tags=["running"],
    )
    for channel in ("email", "sms"):
        consent_record(
            customer=joe,
            channel=channel,
            granted=True,
            source="store",
            wording="Offers, please",
        )
    card = loyalty_card_issue(customer=joe, store=store)
    receipt_record(
        store=store,
        customer=joe,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )
    contact_record(
        customer=joe,
        kind=Contact.Kind.WEB_VISIT,
        channel="online",
        payload={"page": "/shoes?email=joe.bloggs@example.com"},
    )
    return joe
