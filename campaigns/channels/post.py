"""Direct mail: sending a `post` delivery puts the customer on the run's mailing
list, which staff download as CSV or print as address labels
(campaigns.views_exports).

The list is the run's sent `post` deliveries, so it is complete however many
workers sent them; a customer erased, or withdrawing postal consent, before the
list is printed drops off it.
"""

from collections.abc import Iterator
from typing import NamedTuple

from campaigns.models import Delivery
from crm.models import Channel, Consent

from . import ChannelBackend, Outcome, Outgoing
from .consent import deliveries_still_reachable, delivery_consent_current


class MailingRow(NamedTuple):
    name: str
    address: str
    postal_code: str
    city: str
    country: str
    message: str


MAILING_COLUMNS = ("name", "address", "postal_code", "city", "country", "message")


class MailingListBackend(ChannelBackend):
    """Adds recipients to the run's printable address list."""

    channel = Channel.POST

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        # One query for the batch: a letter needs a street address and a town.
        found = {
            pk: (bool(address.strip() and city.strip()) and erased_at is None, consent)
            for pk, address, city, erased_at, consent in Delivery.objects.filter(
                pk__in=[message.delivery_id for message in messages]
            )
            .annotate(current_consent=delivery_consent_current(self.channel))
            .values_list(
                "pk",
                "customer__address",
                "customer__city",
                "customer__erased_at",
                "current_consent",
            )
        }
        outcomes = []
        for message in messages:
            addressable, consent = found.get(message.delivery_id, (False, None))
            if not addressable:
                outcomes.append(
                    Outcome(sent=False, error="No postal address", permanent=True)
                )
            elif consent != Consent.Status.GRANTED:
                outcomes.append(
                    Outcome(
                        sent=False, error="No current consent to post", permanent=True
                    )
                )
            else:
                outcomes.append(
                    Outcome(
                        sent=True,
                        provider_message_id=f"mailing-list:{message.delivery_id}",
                    )
                )
        return outcomes


def mailing_list_rows(run) -> Iterator[MailingRow]:
    """The run's mailing list from one query, by country and postal code (the
    order postal services sort, and give presorted discounts for)."""
    rows = (
        deliveries_still_reachable(
            Delivery.objects.filter(
                run=run, channel=Channel.POST, status=Delivery.Status.SENT
            ),
            Channel.POST,
        )
        .order_by("customer__country", "customer__postal_code", "pk")
        .values_list(
            "customer__first_name",
            "customer__last_name",
            "customer__address",
            "customer__postal_code",
            "customer__city",
            "customer__country",
            "message__name",
        )
        .iterator(chunk_size=2000)
    )
    for first, last, address, postal_code, city, country, message in rows:
        yield MailingRow(
            name=f"{first} {last}".strip(),
            address=address,
            postal_code=postal_code,
            city=city,
            country=country,
            message=message or "",
        )
