"""Direct mail: the mailing list a run's post deliveries make, as CSV and print."""

import csv
import io

import pytest
from django.test import Client

from campaigns.channels import backend_for
from campaigns.channels.post import MailingListBackend, MailingRow, mailing_list_rows
from campaigns.models import Delivery
from crm.models import Channel
from crm.roles import CLERKS, MARKETERS
from crm.services import customer_erase
from tests.conftest import user_in_group
from tests.crm.factories import CustomerFactory

from .channel_support import campaign_run, delivery, grant, message_for, outgoing

POST = Channel.POST


def _addressed(n: int = 0, **fields):
    values = {
        "first_name": f"Ann{n}",
        "last_name": "de Vries",
        "address": f"Kerkstraat {n}",
        "postal_code": f"10{n:02d} AB",
        "city": "Amsterdam",
        "country": "NL",
        **fields,
    }
    customer = CustomerFactory(**values)
    grant(customer, POST)
    return customer


def test_the_configured_post_backend_is_the_mailing_list():
    assert type(backend_for(POST)) is MailingListBackend


def test_sending_accepts_addressed_consenting_customers_only(db):
    run = campaign_run()
    addressed = _addressed(1)
    no_street = _addressed(2, address="  ")
    withdrew = _addressed(3)
    grant(withdrew, POST, granted=False)
    items = [delivery(run, c, POST) for c in (addressed, no_street, withdrew)]

    outcomes = MailingListBackend().send([outgoing(i) for i in items])

    assert [(o.sent, o.permanent, o.error) for o in outcomes] == [
        (True, False, ""),
        (False, True, "No postal address"),
        (False, True, "No current consent to post"),
    ]


def _sent(run, customer, **kwargs):
    return delivery(run, customer, POST, status=Delivery.Status.SENT, **kwargs)


def test_mailing_list_rows_come_from_one_query_in_postal_order(
    db, django_assert_num_queries
):
    run = campaign_run()
    autumn = message_for(run, POST, "Autumn letter")
    later, earlier = _addressed(9), _addressed(1)
    belgian = _addressed(5, country="BE", postal_code="1000", city="Brussel")
    _sent(run, later)
    _sent(run, earlier, message=autumn)
    _sent(run, belgian)
    delivery(run, _addressed(2), POST, status=Delivery.Status.FAILED)
    delivery(run, _addressed(3), Channel.EMAIL, status=Delivery.Status.SENT)
    erased = _addressed(4)
    _sent(run, erased)
    customer_erase(customer=erased)
    _sent(campaign_run(), _addressed(6))

    with django_assert_num_queries(1):
        rows = list(mailing_list_rows(run))

    assert [(row.name, row.postal_code, row.country, row.message) for row in rows] == [
        ("Ann5 de Vries", "1000", "BE", "post message"),
        ("Ann1 de Vries", "1001 AB", "NL", "Autumn letter"),
        ("Ann9 de Vries", "1009 AB", "NL", "post message"),
    ]
    assert rows[0] == MailingRow(
        "Ann5 de Vries", "Kerkstraat 5", "1000", "Brussel", "BE", "post message"
    )


def _marketer() -> Client:
    client = Client()
    client.force_login(user_in_group("marketer", MARKETERS, is_staff=True))
    return client


def test_the_csv_download_lists_the_run(db):
    run = campaign_run("winter-letters", key="2027-01-04")
    _sent(run, _addressed(1, last_name="O'Brien, Jr."))

    response = _marketer().get(f"/campaigns/runs/{run.pk}/mailing-list.csv")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="winter-letters-2027-01-04-mailing-list.csv"'
    )
    body = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body))) == [
        ["name", "address", "postal_code", "city", "country", "message"],
        [
            "Ann1 O'Brien, Jr.",
            "Kerkstraat 1",
            "1001 AB",
            "Amsterdam",
            "NL",
            "post message",
        ],
    ]


def test_the_print_page_shows_one_label_per_address_in_constant_queries(
    db, django_assert_max_num_queries
):
    run = campaign_run("winter-letters")
    client = _marketer()
    for n in range(1, 4):
        _sent(run, _addressed(n))
    client.get(f"/campaigns/runs/{run.pk}/mailing-list/")  # warm the session

    with django_assert_max_num_queries(8):
        few = client.get(f"/campaigns/runs/{run.pk}/mailing-list/")
    for n in range(4, 30):
        _sent(run, _addressed(n))
    with django_assert_max_num_queries(8):
        many = client.get(f"/campaigns/runs/{run.pk}/mailing-list/")

    assert few.status_code == many.status_code == 200
    html = many.content.decode()
    assert html.count('class="label"') == 29
    assert "Kerkstraat 29" in html
    assert "@media print" in html
    assert f"/campaigns/runs/{run.pk}/mailing-list.csv" in html


@pytest.mark.parametrize("path", ["mailing-list.csv", "mailing-list/"])
def test_exports_need_staff_with_the_delivery_permission(db, path):
    run = campaign_run()
    url = f"/campaigns/runs/{run.pk}/{path}"
    clerk = Client()
    clerk.force_login(user_in_group("clerk-1", CLERKS, is_staff=True))

    assert Client().get(url).status_code == 302
    assert clerk.get(url).status_code == 403
    assert _marketer().get(url).status_code == 200
    assert _marketer().get(f"/campaigns/runs/{run.pk + 99}/{path}").status_code == 404
