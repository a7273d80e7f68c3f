"""End to end in headless Chromium: a clerk records a sale at the desk and the
customer's receipt arrives at a real SMTP server."""

import re
from decimal import Decimal

import pytest

from crm.models import Receipt, StaffMember
from crm.services import points_earn
from tests.conftest import CHROMIUM
from tests.crm.desk_support import (
    SmtpCatcher,
    celery_eager,
    clerks_group,
    smtp_settings,
)
from tests.crm.factories import (
    CategoryFactory,
    CustomerFactory,
    LoyaltyCardFactory,
    ProductFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def smtp_server(settings):
    with SmtpCatcher.running() as server, celery_eager(settings):
        smtp_settings(settings, server)
        yield server


@pytest.fixture
def shop(transactional_db):
    store = StoreFactory(
        code="ams",
        name="Loyalist Amsterdam",
        address="Kalverstraat 1",
        postal_code="1012 NX",
        city="Amsterdam",
    )
    clerk = UserFactory(username="clerk", first_name="Sam")
    clerk.groups.add(clerks_group())
    StaffMember.objects.create(user=clerk, store=store)
    shoes = CategoryFactory(name="Shoes", slug="shoes")
    bags = CategoryFactory(name="Bags", slug="bags")
    ProductFactory(
        sku="SHOE-TRAIL-42", name="Trail running shoe", category=shoes, price="89.95"
    )
    ProductFactory(
        sku="BAG-TOTE",
        barcode="8712345678906",
        name="Canvas tote bag",
        category=bags,
        price="19.50",
    )
    customer = CustomerFactory(
        email="joe.jansen@example.com", first_name="Joe", last_name="Jansen"
    )
    card = LoyaltyCardFactory(customer=customer, tier="silver")
    points_earn(card=card, points=250)
    return {"store": store, "clerk": clerk, "customer": customer, "card": card}


def test_clerk_records_a_sale_for_a_scanned_card_and_the_receipt_is_emailed(
    live_server, browser, smtp_server, shop, screenshots
):
    card = shop["card"]
    page = browser.new_page(viewport={"width": 1180, "height": 900})
    page.set_default_timeout(10_000)

    # The clerk signs in.
    page.goto(f"{live_server.url}/desk/")
    page.get_by_label("Username").focus()
    page.keyboard.type("clerk")
    page.keyboard.press("Tab")
    page.keyboard.type("correct-horse-battery")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/desk/")

    # From here on only the keyboard (and the scanner, which is one) is used.
    # A card is scanned: the scanner types the number and presses Enter.
    identifier = page.get_by_label("Loyalty card, email or phone")
    assert identifier.evaluate("node => node === document.activeElement")
    page.keyboard.type(card.number)
    page.keyboard.press("Enter")
    panel = page.locator("#customer-panel [data-customer-found]")
    panel.wait_for()
    assert "Joe Jansen" in panel.inner_text()
    assert "Silver" in panel.inner_text()
    assert "250" in panel.inner_text()
    assert "last visit" in panel.inner_text().lower()
    points_help = page.locator("[data-points-help]").inner_text()
    assert "Balance: 250 points." in points_help
    # The taller payment panel beside them opens no gap between customer and lines.
    gap = page.evaluate(
        "() => document.querySelector('.sale-lines').getBoundingClientRect().top"
        " - document.querySelector('.sale-customer').getBoundingClientRect().bottom"
    )
    assert gap <= 24

    # Line 1 is typed, with a quantity of 2; line 2 is a scanned barcode.
    first_code = page.get_by_label("SKU or barcode, line 1")
    assert first_code.evaluate("node => node === document.activeElement")
    page.keyboard.type("SHOE-TRAIL-42")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    second_code = page.get_by_label("SKU or barcode, line 2")
    second_code.wait_for()
    assert second_code.evaluate("node => node === document.activeElement")
    page.keyboard.type("8712345678906")
    page.keyboard.press("Enter")
    page.get_by_label("SKU or barcode, line 3").wait_for()
    page.wait_for_function(
        "document.querySelector('#sale-total').textContent.includes('199.40')"
    )
    assert page.locator("[data-line-name]").nth(0).inner_text() == "Trail running shoe"
    assert page.locator("[data-line-name]").nth(1).inner_text() == "Canvas tote bag"

    # Paid in cash: arrow keys move through the payment methods.
    assert page.get_by_label("Email the receipt").is_checked()
    page.get_by_label("Debit or credit card").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_label("Cash").is_checked()
    page.get_by_label("SKU or barcode, line 3").focus()
    page.screenshot(path=str(screenshots / "desk.png"), full_page=True)

    # Ctrl+Enter records the sale from any field.
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r".*/desk/receipts/\d+/$"))

    receipt = Receipt.objects.get()
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Sale recorded"
    assert page.locator("[data-receipt-number]").inner_text() == receipt.number
    assert page.locator("[data-points-earned]").inner_text() == "199"
    assert page.locator("[data-points-balance]").inner_text() == "449"
    assert "Sent to joe.jansen@example.com" in page.locator("#email-state").inner_text()
    page.screenshot(path=str(screenshots / "desk-confirmation.png"), full_page=True)

    assert receipt.total == Decimal("199.40")
    assert receipt.payment_method == "cash"
    assert receipt.customer == shop["customer"]
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == "joe.jansen@example.com"
    assert receipt.number in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "2 x Trail running shoe" in text
    assert "199.40" in text
