"""Social audiences: hashes of normalised addresses, the per-run CSV, the
download and the audience.ready event."""

import csv
import hashlib
import json
import threading
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client

from campaigns.channels import backend_for
from campaigns.channels.social import (
    CSV_HEADER,
    AudienceBackend,
    audience_announce,
    audience_csv,
    audience_download_url,
    audience_hashes,
)
from campaigns.models import Delivery
from crm.models import Channel
from crm.roles import CLERKS, MARKETERS
from crm.webhooks.models import WebhookDelivery, WebhookEvent
from crm.webhooks.services import webhook_subscription_create
from tests.conftest import user_in_group
from tests.crm.factories import CustomerFactory

from .channel_support import campaign_run, delivery, grant, outbox, outgoing

__all__ = ["outbox"]

SOCIAL = Channel.SOCIAL_ADS


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize(
    ("email", "phone", "expected"),
    [
        (
            "  Joe.Bloggs@Example.COM ",
            "+31 6 1234 5678",
            (sha("joe.bloggs@example.com"), sha("31612345678")),
        ),
        # A national number is read in the default region (NL) first.
        ("a@b.nl", "06-12345678", (sha("a@b.nl"), sha("31612345678"))),
        ("", "+447700900123", ("", sha("447700900123"))),
        (None, "", ("", "")),
        ("x@example.com", "not a phone", (sha("x@example.com"), "")),
    ],
)
def test_audience_hashes_normalise_then_sha256(email, phone, expected):
    assert audience_hashes(email, phone) == expected


def test_known_vector():
    # SHA-256 of "test@example.com", as the platforms' documentation lists it.
    assert audience_hashes("Test@Example.com", "")[0] == (
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    )


def test_google_style_hashes_keep_the_plus(settings):
    settings.CAMPAIGN_AUDIENCE_PHONE_PLUS = True

    assert audience_hashes("", "+31612345678")[1] == sha("+31612345678")


def test_the_configured_social_backend_is_the_audience_file():
    assert type(backend_for(SOCIAL)) is AudienceBackend


def _consented(**fields):
    customer = CustomerFactory(**fields)
    grant(customer, SOCIAL)
    return customer


def test_sending_appends_hashes_to_the_runs_audience_file(db, outbox):
    run = campaign_run("spring-sale", key="2027-03-01")
    joe = _consented(email="Joe@Example.com", phone="+31612345678")
    phone_only = _consented(email=None, phone="+31687654321")
    withdrew = _consented(email="gone@example.com")
    grant(withdrew, SOCIAL, granted=False)
    never_asked = CustomerFactory(email="quiet@example.com")
    items = [
        delivery(run, customer, SOCIAL)
        for customer in (joe, phone_only, withdrew, never_asked)
    ]

    outcomes = AudienceBackend().send([outgoing(item) for item in items])
    AudienceBackend().send([outgoing(items[0])])  # a second batch appends

    assert [(o.sent, o.permanent) for o in outcomes] == [
        (True, False),
        (True, False),
        (False, True),
        (False, True),
    ]
    assert outcomes[0].provider_message_id == "audience:spring-sale-2027-03-01"
    lines = (outbox / "audiences" / "spring-sale-2027-03-01.csv").read_text()
    assert lines.splitlines() == [
        CSV_HEADER,
        f"{sha('joe@example.com')},{sha('31612345678')}",
        f",{sha('31687654321')}",
        f"{sha('joe@example.com')},{sha('31612345678')}",
    ]
    assert "example.com" not in lines


def _sent(run, customer):
    return delivery(run, customer, SOCIAL, status=Delivery.Status.SENT)


def test_audience_csv_streams_the_runs_sent_deliveries_in_one_query(
    db, django_assert_num_queries
):
    run = campaign_run()
    other_run = campaign_run()
    kept = [_consented(email=f"c{n}@example.com", phone="") for n in range(5)]
    for customer in kept:
        _sent(run, customer)
    withdrew_since = _consented(email="w@example.com")
    _sent(run, withdrew_since)
    grant(withdrew_since, SOCIAL, granted=False)
    failed = _consented(email="f@example.com")
    delivery(run, failed, SOCIAL, status=Delivery.Status.FAILED)
    by_email = _consented(email="e@example.com")
    delivery(run, by_email, Channel.EMAIL, status=Delivery.Status.SENT)
    _sent(other_run, _consented(email="o@example.com"))

    with django_assert_num_queries(1):
        lines = list(audience_csv(run))

    assert lines[0] == CSV_HEADER + "\n"
    rows = list(csv.reader(lines[1:]))
    assert rows == [[sha(f"c{n}@example.com"), ""] for n in range(5)]


def test_announcing_tells_subscribers_where_to_download_and_nothing_personal(
    db, settings
):
    settings.PUBLIC_BASE_URL = "https://crm.example.com"
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = True
    # An ad platform only hears about customers who agreed to social audiences;
    # the announcement concerns none, so it must reach it all the same.
    platform = webhook_subscription_create(
        name="Ads",
        url="https://ads.example.com/hook",
        events=[WebhookEvent.AUDIENCE_READY],
        consent_channel=SOCIAL,
    )
    run = campaign_run("spring-sale", key="2027-03-01")
    for n in range(3):
        _sent(run, _consented(email=f"c{n}@example.com"))

    assert audience_announce(run=run) == 1

    sent = WebhookDelivery.objects.get(subscription=platform)
    assert sent.event == "audience.ready"
    (event,) = json.loads(sent.body)["data"]
    assert set(event) == {"campaign", "run", "rows", "url"}
    assert (event["campaign"], event["run"], event["rows"]) == (
        "spring-sale",
        "2027-03-01",
        3,
    )
    assert event["url"].startswith(
        f"https://crm.example.com/campaigns/runs/{run.pk}/audience.csv?signature="
    )
    assert "example.com" not in sent.body.replace("crm.example.com", "").replace(
        "ads.example.com", ""
    )


def test_an_empty_audience_is_not_announced(db):
    assert audience_announce(run=campaign_run()) == 0


def test_the_signed_link_downloads_the_audience_without_signing_in(
    db, client, settings
):
    run = campaign_run()
    _sent(run, _consented(email="a@example.com"))
    path = urlsplit(audience_download_url(run))

    response = client.get(f"{path.path}?{path.query}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines() == [CSV_HEADER, f"{sha('a@example.com')},"]


def test_a_link_for_another_run_or_a_forged_one_is_refused(db, client, settings):
    run, other = campaign_run(), campaign_run()
    signature = signing.TimestampSigner(salt="campaigns.audience").sign(str(other.pk))

    assert (
        client.get(
            f"/campaigns/runs/{run.pk}/audience.csv?signature={signature}"
        ).status_code
        == 403
    )
    assert (
        client.get(f"/campaigns/runs/{run.pk}/audience.csv?signature=x:y").status_code
        == 403
    )


def test_staff_need_the_delivery_permission_to_download(db, settings):
    run = campaign_run()
    url = f"/campaigns/runs/{run.pk}/audience.csv"
    marketer, clerk = Client(), Client()
    marketer.force_login(user_in_group("marketer", MARKETERS, is_staff=True))
    clerk.force_login(user_in_group("clerk-1", CLERKS, is_staff=True))

    assert Client().get(url).status_code == 302  # to the admin's sign-in
    assert marketer.get(url).status_code == 200
    assert clerk.get(url).status_code == 403


def test_workers_starting_the_same_audience_write_one_header(outbox):
    from campaigns.channels.outbox import outbox_append_lines
    from campaigns.channels.social import _audience_file

    start = threading.Barrier(8)

    def worker(number: int) -> None:
        start.wait()
        outbox_append_lines(
            _audience_file("spring-sale-2027"), [f"{number:064x},"] * 20
        )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = (outbox / "audiences" / "spring-sale-2027.csv").read_text().splitlines()
    assert lines[0] == CSV_HEADER
    assert len(lines) == 1 + 8 * 20
    assert CSV_HEADER not in lines[1:]
    assert list((outbox / "audiences").iterdir()) == [
        outbox / "audiences" / "spring-sale-2027.csv"
    ]
