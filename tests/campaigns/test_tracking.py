from urllib.parse import urlsplit

import pytest
from django.core import signing

from campaigns.tracking import CLICK_SALT, OPEN_SALT, tracking_links
from crm.models import Consent, Contact
from crm.services import consent_record, customer_erase
from tests.campaigns.conftest import campaign_make, delivery_make, message_make
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def path(url: str) -> str:
    assert url.startswith("https://shop.example/c/")
    return urlsplit(url).path


@pytest.fixture
def subscriber():
    customer = CustomerFactory(email="sarah@example.com", first_name="Sarah")
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source="store",
        wording="Send me offers",
    )
    return customer


@pytest.fixture
def delivery(subscriber):
    return delivery_make(subscriber, message=message_make(campaign_make()))


@pytest.fixture
def links(delivery):
    return tracking_links(delivery_id=delivery.pk)


def email_consent(customer) -> str | None:
    return (
        Consent.objects.filter(customer=customer, channel="email")
        .order_by("-recorded_at", "-id")
        .values_list("status", flat=True)
        .first()
    )


def written() -> tuple[int, int]:
    return Consent.objects.count(), Contact.objects.count()


# Unsubscribe ---------------------------------------------------------------------


def test_one_click_post_withdraws_email_consent_without_signing_in(
    client, subscriber, delivery, links
):
    client.handler.enforce_csrf_checks = True

    response = client.post(
        path(links.unsubscribe_url), {"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    assert email_consent(subscriber) == Consent.Status.WITHDRAWN
    withdrawal = Consent.objects.filter(customer=subscriber).first()
    assert withdrawal.source == Consent.Source.EMAIL_LINK
    assert "one-click" in withdrawal.wording
    unsubscribe = Contact.objects.get(customer=subscriber, kind="unsubscribe")
    assert unsubscribe.channel == "email"
    assert unsubscribe.payload["delivery"] == delivery.pk
    assert unsubscribe.payload["campaign"] == delivery.campaign_id


def test_second_unsubscribe_post_writes_nothing(client, subscriber, links):
    client.post(path(links.unsubscribe_url), {"List-Unsubscribe": "One-Click"})
    before = written()

    response = client.post(path(links.unsubscribe_url))

    assert response.status_code == 200
    assert written() == before


def test_unsubscribe_after_consenting_again_withdraws_again(client, subscriber, links):
    client.post(path(links.unsubscribe_url))
    consent_record(
        customer=subscriber,
        channel="email",
        granted=True,
        source="online",
        wording="Yes",
    )

    client.post(path(links.unsubscribe_url))

    assert email_consent(subscriber) == Consent.Status.WITHDRAWN
    assert Consent.objects.filter(customer=subscriber, status="withdrawn").count() == 2


def test_get_shows_a_button_and_writes_nothing(client, subscriber, links):
    before = written()

    response = client.get(path(links.unsubscribe_url))

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert b"sarah@example.com" not in response.content
    assert written() == before


def test_unsubscribe_of_an_erased_customer_writes_nothing(client, subscriber, links):
    customer_erase(customer=subscriber)
    before = written()

    assert client.post(path(links.unsubscribe_url)).status_code == 200
    assert written() == before


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        signing.dumps(1, salt="another.salt"),
        # A valid open-pixel token is no unsubscribe token.
        "open",
    ],
)
def test_forged_unsubscribe_token_is_a_404_and_writes_nothing(client, delivery, token):
    if token == "open":
        token = signing.dumps(delivery.pk, salt=OPEN_SALT)
    before = written()

    for method in (client.get, client.post):
        response = method(f"/c/u/{token}/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/plain")

    assert written() == before
    assert email_consent(delivery.customer) == Consent.Status.GRANTED


def test_token_of_a_deleted_delivery_is_a_404(client, delivery, links):
    delivery.delete()
    assert client.post(path(links.unsubscribe_url)).status_code == 404


# Opens and clicks ----------------------------------------------------------------


def test_open_pixel_returns_a_gif_and_records_each_open(client, delivery, links):
    for _ in range(2):
        response = client.get(path(links.open_pixel_url))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/gif"
        assert response.content.startswith(b"GIF89a")

    opens = Contact.objects.filter(customer=delivery.customer, kind="email_open")
    assert opens.count() == 2
    assert opens.first().payload == {
        "campaign": delivery.campaign_id,
        "delivery": delivery.pk,
        "message": delivery.message_id,
    }


def test_opens_are_announced_to_the_segment_engine(client, delivery, links):
    from crm import hooks

    announced = []

    def receiver(*, contacts):
        announced.extend(contacts)

    hooks.contacts_recorded.register(receiver)
    try:
        client.get(path(links.open_pixel_url))
    finally:
        hooks.contacts_recorded.unregister(receiver)

    opened = Contact.objects.get(kind="email_open")
    assert [(c.customer_id, c.contact_id) for c in announced] == [
        (delivery.customer_id, opened.pk)
    ]


def test_forged_open_token_writes_nothing(client, delivery):
    before = written()
    token = signing.dumps(delivery.pk, salt=OPEN_SALT)[:-2] + "xx"
    assert client.get(f"/c/o/{token}.gif").status_code == 404
    assert written() == before


def test_click_redirects_to_the_signed_url_and_records_it(client, delivery, links):
    target = "https://shop.example/sale?size=42&colour=red"

    response = client.get(path(links.click_url(target)))

    assert response.status_code == 302
    assert response["Location"] == target
    click = Contact.objects.get(customer=delivery.customer, kind="email_click")
    assert click.payload["url"] == target
    assert click.payload["delivery"] == delivery.pk


def test_head_request_of_a_click_link_records_nothing(client, delivery, links):
    response = client.head(path(links.click_url("https://shop.example/")))
    assert response.status_code == 302
    assert not Contact.objects.filter(kind="email_click").exists()


def test_click_token_cannot_be_rewritten_to_another_url(client, delivery):
    before = written()
    forged = signing.dumps([delivery.pk, "https://evil.example"], salt="x")
    not_http = signing.dumps(
        [delivery.pk, "javascript:alert(1)"], salt=CLICK_SALT, compress=True
    )

    for token in (forged, not_http):
        response = client.get(f"/c/l/{token}/")
        assert response.status_code == 404
        assert "Location" not in response

    assert written() == before


def test_links_are_absolute_on_the_public_base_url(links):
    assert links.unsubscribe_url.startswith("https://shop.example/c/u/")
    assert links.open_pixel_url.startswith("https://shop.example/c/o/")
    assert links.click_url("https://a.example").startswith("https://shop.example/c/l/")
