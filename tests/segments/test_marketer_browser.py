"""End to end in headless Chromium: the demo marketer's day in the admin.

Signs in as the demo `marketer`, reads the home dashboard, creates a segment from a
typed rule, reads why a customer is in it and exports its members as CSV.
"""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from crm.demo.users import demo_users_ensure
from crm.models import MemberExport
from crm.services import LineInput, consent_record, receipt_record
from segments.models import Segment
from tests.conftest import CHROMIUM
from tests.crm.desk_support import celery_eager
from tests.crm.factories import CustomerFactory, ProductFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def shop(transactional_db, store, settings):
    with celery_eager(settings):
        demo_users_ensure()
        Segment.objects.update(is_active=False)
        ProductFactory(sku="COAT-1", name="Winter coat", price="149.00")
        ProductFactory(sku="SOCK-1", name="Wool socks", price="9.50")
        people = {
            "ann": CustomerFactory(first_name="Ann", last_name="Bakker"),
            "bob": CustomerFactory(first_name="Bob", last_name="Visser"),
            "cas": CustomerFactory(first_name="Cas", last_name="Smit"),
        }
        for name, sku, days in (("ann", "COAT-1", 12), ("bob", "COAT-1", 40)):
            receipt_record(
                store=store,
                customer=people[name],
                payment_method="card",
                lines=[LineInput(sku, 1)],
                purchased_at=timezone.now() - timedelta(days=days),
            )
        receipt_record(
            store=store,
            customer=people["cas"],
            payment_method="card",
            lines=[LineInput("SOCK-1", 1)],
        )
        consent_record(
            customer=people["ann"],
            channel="email",
            granted=True,
            source="store",
            wording="Send me offers by email.",
        )
        yield people


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_marketer_reads_the_dashboard_builds_a_segment_reads_why_and_exports_it(
    live_server, browser, shop, screenshots
):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(15_000)

    # The dashboard is the admin's home page.
    sign_in(page, live_server.url, "marketer", "loyalist-marketer")
    page.wait_for_url(f"{live_server.url}/admin/")
    dashboard = page.locator("#content").inner_text()
    assert "Customers" in dashboard
    assert "Reachable" in dashboard or "reachable" in dashboard

    # A segment from a typed rule; its members are computed once it is saved.
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.get_by_label("Name").fill("Coat buyers")
    page.locator("textarea.segment-query").fill(
        "total_spent > 100 and last_purchase within 60 days"
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".messagelist").wait_for()
    assert "403" not in page.title()
    segment = Segment.objects.get(name="Coat buyers")
    assert segment.size == 2

    # Why is Ann in it? The customer page links to the explanation.
    ann = shop["ann"]
    page.goto(f"{live_server.url}/admin/crm/customer/{ann.pk}/change/")
    page.get_by_role("link", name="Why?").first.click()
    page.wait_for_url(f"**/explain/{ann.pk}/")
    explanation = page.locator("#content").inner_text()
    assert "12 days ago" in explanation
    assert "EUR" in explanation or "€" in explanation
    page.screenshot(path=str(screenshots / "explanation.png"), full_page=True)

    # The members as CSV, from the segment list's action.
    page.goto(f"{live_server.url}/admin/segments/segment/")
    page.get_by_role("row", name="Coat buyers").get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option(label="Export members as CSV")
    with page.expect_download() as download:
        page.get_by_role("button", name="Go").click()
    rows = list(
        csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig")))
    )

    by_id = {row["Customer id"]: row for row in rows}
    assert set(by_id) == {str(ann.pk), str(shop["bob"].pk)}
    # Contact details only where the customer consented: Ann to email, Bob to none.
    assert by_id[str(ann.pk)]["Email"] == ann.email
    assert by_id[str(shop["bob"].pk)]["Email"] == ""
    logged = MemberExport.objects.get()
    assert (logged.exported_by.username, logged.rows) == ("marketer", 2)
