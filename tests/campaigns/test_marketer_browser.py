"""End to end in headless Chromium: the demo marketer creates a campaign with a
message, previews its audience and the message, and schedules it."""

import pytest

from campaigns.models import Campaign
from crm.demo.users import demo_users_ensure
from crm.models import Consent
from segments.models import CustomerSegmentState, Segment
from tests.conftest import CHROMIUM
from tests.crm.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def shop(transactional_db, store):
    demo_users_ensure()
    Segment.objects.update(is_active=False)
    regulars = Segment.objects.create(name="Regulars", slug="regulars", rules={})
    people = [
        CustomerFactory(first_name="Ann"),
        CustomerFactory(first_name="Bob"),
        CustomerFactory(first_name="Cas", email=""),
    ]
    for customer in people:
        CustomerSegmentState.objects.update_or_create(
            customer=customer, defaults={"segment_ids": [regulars.pk]}
        )
    for customer in people[:2]:
        Consent.objects.create(
            customer=customer,
            channel="email",
            status=Consent.Status.GRANTED,
            source=Consent.Source.STORE,
            wording="Send me offers by email.",
        )
    return {"segment": regulars, "people": people}


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_marketer_creates_previews_and_schedules_a_campaign(
    live_server, browser, shop, screenshots
):
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live_server.url, "marketer", "loyalist-marketer")
    page.wait_for_url(f"{live_server.url}/admin/")

    # The campaign, its audience picked by typing, and one email message.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.locator("#id_name").fill("Spring sale")
    page.locator("#id_include_segments").locator("xpath=..").locator(
        ".select2-selection"
    ).click()
    page.locator("[aria-controls=select2-id_include_segments-results]").fill("Regu")
    page.locator(".select2-results__option", has_text="Regulars").click()
    page.locator("#id_holdout_percent").fill("0")
    page.locator("#id_channels").fill("email")
    page.locator("#id_messages-0-name").fill("General")
    page.locator("#id_messages-0-channel").select_option("email")
    page.locator("#id_messages-0-subject").fill("Spring is here, {{ first_name }}")
    page.locator("#id_messages-0-body_text").fill("Everything 20% off this week.")
    page.get_by_role("button", name="Save and continue editing").click()
    page.locator(".messagelist").wait_for()
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.messages.count() == 1
    page.screenshot(path=str(screenshots / "campaign-change.png"), full_page=True)

    # The audience preview: three customers, one with no way to reach them.
    page.locator("#campaign-preview-button").click()
    page.locator("#campaign-preview").wait_for()
    assert page.locator("#preview-audience").inner_text() == "3"
    assert page.locator("#preview-skipped").inner_text() == "1"
    page.screenshot(path=str(screenshots / "campaign-preview.png"), full_page=True)
    page.go_back()

    # The message as Ann gets it.
    page.locator(".message-preview-link").click()
    page.locator("#message-preview-subject").wait_for()
    assert "Spring is here," in page.locator("#message-preview-subject").inner_text()
    page.go_back()

    # Scheduling asks first, then locks the audience and the messages.
    page.locator("#campaign-schedule-button").click()
    page.locator(".messagelist").wait_for()
    assert "is scheduled" in page.locator(".messagelist").inner_text()
    assert page.locator("#campaign-locked").is_visible()
    assert page.locator("#campaign-pause-button").is_visible()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
