import json
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from crm.models import Receipt
from crm.services import LineInput, receipt_record
from segments.admin import customer_segments_html
from segments.models import Segment, SegmentEvent
from segments.services import recompute_all
from tests.crm.factories import CustomerFactory
from tests.segments.factories import (
    SegmentEventFactory,
    SegmentFactory,
    SegmentSizeSnapshotFactory,
    member_ids,
    membership_create,
)

pytestmark = pytest.mark.django_db

RFM_SLUGS = {
    "rfm-champions",
    "rfm-loyal",
    "rfm-potential-loyalist",
    "rfm-new",
    "rfm-at-risk",
    "rfm-cant-lose",
    "rfm-hibernating",
    "rfm-lost",
}


def url(view: str, *args) -> str:
    return reverse(f"admin:segments_segment_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_data(**overrides) -> dict:
    data = {
        "name": "Repeat buyers",
        "slug": "",
        "kind": "behavioural",
        "description": "",
        "is_active": "on",
        "query": "orders >= 2",
        "rules": "",
    }
    data.update(overrides)
    return data


def buy(store, customer, *, times=1):
    for _ in range(times):
        receipt_record(
            store=store,
            customer=customer,
            payment_method=Receipt.PaymentMethod.CARD,
            lines=[LineInput("SHOE-1", 1)],
        )


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def buyers(store, products):
    repeat = CustomerFactory(first_name="Rita", last_name="Repeat")
    once = CustomerFactory(first_name="Otto", last_name="Once")
    buy(store, repeat, times=2)
    buy(store, once)
    return {"repeat": repeat, "once": once}


# Migration ---------------------------------------------------------------------------


def test_default_rfm_segments_exist_after_migrate():
    segments = {s.slug: s for s in Segment.objects.filter(slug__startswith="rfm-")}

    assert set(segments) == RFM_SLUGS
    champions = segments["rfm-champions"]
    assert champions.kind == Segment.Kind.VALUE
    assert champions.is_active
    assert champions.rules == {
        "field": "rfm_segment",
        "op": "eq",
        "value": "champions",
    }
    assert segments["rfm-cant-lose"].rules["value"] == "cant_lose"
    assert all(segment.description for segment in segments.values())


# Pages -------------------------------------------------------------------------------


def test_changelist_flags_tiny_segments_with_pinned_queries(
    staff, django_assert_max_num_queries
):
    now = timezone.now()
    SegmentFactory(name="Tiny", size=3, last_computed_at=now)
    for n in range(10):
        SegmentFactory(name=f"Big {n}", size=500, last_computed_at=now)

    # Session, user, two counts and the page of segments.
    with django_assert_max_num_queries(5):
        response = staff.get(url("changelist"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Tiny" in content
    assert content.count("segment-tiny") == 1
    assert "under 50" in content


def test_changelist_uses_the_configured_minimum(staff, settings):
    settings.LOYALIST_SEGMENT_MIN_SIZE = 1000
    SegmentFactory(name="Medium", size=500, last_computed_at=timezone.now())

    response = staff.get(url("changelist"))

    assert "under 1000" in response.content.decode()


def test_add_page_renders_the_rule_editor(staff):
    response = staff.get(url("add"))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="query"' in content
    assert 'name="rules"' in content
    assert 'name="_preview"' in content
    assert "bought_category_within_days" in content  # the field reference


def test_change_page_shows_members_history_chart_and_warnings(
    staff, django_assert_max_num_queries
):
    segment = SegmentFactory(
        name="Small", size=2, last_computed_at=timezone.now(), rules={"all": []}
    )
    twin = SegmentFactory(name="Twin", size=2)
    customers = CustomerFactory.create_batch(2)
    for customer in customers:
        membership_create(segment=segment, customer=customer)
        membership_create(segment=twin, customer=customer)
        SegmentEventFactory(segment=segment, customer=customer)
    today = timezone.localdate()
    for days, size in ((2, 0), (1, 1), (0, 2)):
        SegmentSizeSnapshotFactory(
            segment=segment, date=today - timedelta(days=days), size=size
        )

    with django_assert_max_num_queries(10):
        response = staff.get(url("change", segment.pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="query"' in content
    assert ">\ntrue</textarea>" in content  # the rule, written as a query
    assert "under the minimum of 50" in content
    assert "overlaps “Twin” almost entirely (100%" in content
    assert 'id="segment-size-chart"' in content
    for customer in customers:
        assert url("explain", segment.pk, customer.pk) in content
    assert "Entries and exits" in content


def test_a_segment_overlapping_several_others_shows_one_warning_naming_them(staff):
    broad = SegmentFactory(name="Broad", rules={"all": []})
    twins = [SegmentFactory(name=name) for name in ("Alpha", "Beta", "Gamma")]
    for customer in CustomerFactory.create_batch(2):
        membership_create(segment=broad, customer=customer)
        for twin in twins:
            membership_create(segment=twin, customer=customer)
    for segment in (broad, *twins):
        Segment.objects.filter(pk=segment.pk).update(size=2)

    content = staff.get(url("change", broad.pk)).content.decode()

    assert content.count("segment-warning segment-overlap") == 1
    assert "overlaps 3 other segments almost entirely" in content
    for twin in twins:
        assert f'{url("change", twin.pk)}">{twin.name}</a> (100%)' in content


# Saving ------------------------------------------------------------------------------


def test_syntax_error_shows_its_position_and_saves_nothing(staff):
    before = Segment.objects.count()

    response = staff.post(url("add"), form_data(query="orders >= and city = 'x'"))

    assert response.status_code == 200
    assert Segment.objects.count() == before
    content = response.content.decode()
    assert "expected a value after" in content
    assert "at column 11" in content
    assert 'id="segment-syntax-caret"' in content
    assert "orders &gt;= and city = &#x27;x&#x27;\n          ^" in content


def test_json_with_an_unknown_field_shows_the_path_and_saves_nothing(staff):
    before = Segment.objects.count()
    rules = {
        "all": [
            {"field": "orders", "op": "gte", "value": 2},
            {"field": "shoe_size", "op": "eq", "value": 42},
        ]
    }

    response = staff.post(url("add"), form_data(query="", rules=json.dumps(rules)))

    assert response.status_code == 200
    assert Segment.objects.count() == before
    assert (
        "all[1].field: unknown field &#x27;shoe_size&#x27;" in response.content.decode()
    )


def test_invalid_condition_in_a_query_is_shown_with_the_condition(staff):
    response = staff.post(url("add"), form_data(query='orders >= 2 and gender = "q"'))

    content = response.content.decode()
    assert "all[1].value" in content
    assert "in the condition gender = &quot;q&quot;" in content


def test_query_and_json_together_are_refused(staff):
    rules = json.dumps({"field": "orders", "op": "gte", "value": 2})

    response = staff.post(url("add"), form_data(rules=rules))

    assert "not both" in response.content.decode()
    assert not Segment.objects.filter(name="Repeat buyers").exists()


def test_preview_shows_count_and_sample_without_saving(staff, buyers):
    before = Segment.objects.count()

    response = staff.post(url("add"), form_data(_preview="Preview"))

    assert response.status_code == 200
    assert Segment.objects.count() == before
    content = response.content.decode()
    assert "1 customer matches" in content
    assert "Rita Repeat" in content
    assert "Otto Once" not in content
    assert "Under the minimum of 50 members" in content
    assert "Please correct" not in content


def test_preview_on_the_change_page_leaves_the_segment_as_it_was(staff, buyers):
    segment = SegmentFactory(rules={"field": "orders", "op": "gte", "value": 2})

    response = staff.post(
        url("change", segment.pk),
        form_data(name="Renamed", query="orders >= 1", _preview="Preview"),
    )

    assert response.status_code == 200
    assert "2 customers match" in response.content.decode()
    segment.refresh_from_db()
    assert segment.name != "Renamed"
    assert segment.rules == {"field": "orders", "op": "gte", "value": 2}


def test_preview_of_an_invalid_rule_shows_the_error(staff):
    response = staff.post(url("add"), form_data(query="orders >>", _preview="1"))

    content = response.content.decode()
    assert "Fix the rule to see a preview." in content
    assert "unknown operator" in content


def test_saving_creates_the_segment_through_the_service_and_computes_members(
    staff, buyers, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff.post(url("add"), form_data(description="Two or more."))

    assert response.status_code == 302
    segment = Segment.objects.get(name="Repeat buyers")
    assert segment.slug == "repeat-buyers"
    assert segment.rules == {"field": "orders", "op": "gte", "value": 2}
    assert callbacks  # the recompute was enqueued on commit
    assert member_ids(segment) == {buyers["repeat"].pk}
    segment.refresh_from_db()
    assert segment.size == 1
    assert segment.last_computed_at is not None


def test_saving_a_json_rule_on_the_change_page_recomputes(
    staff, buyers, eager_celery, django_capture_on_commit_callbacks
):
    segment = SegmentFactory(
        name="Buyers", slug="buyers", rules={"field": "orders", "op": "gte", "value": 2}
    )
    recompute_all()
    rules = {"field": "orders", "op": "gte", "value": 1}

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            url("change", segment.pk),
            form_data(name="Buyers", query="", rules=json.dumps(rules)),
        )

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.rules == rules
    assert len(member_ids(segment)) == 2


def test_change_page_prefills_the_query_from_the_rules(staff):
    segment = SegmentFactory(
        rules={
            "any": [
                {"field": "city", "op": "in", "value": ["utrecht", "delft"]},
                {"not": {"field": "gender", "op": "eq", "value": "f"}},
            ]
        }
    )

    response = staff.get(url("change", segment.pk))

    assert (
        "city in (&quot;utrecht&quot;, &quot;delft&quot;) or not gender = &quot;f&quot;"
        in response.content.decode()
    )


def test_change_form_saved_as_shown_keeps_the_rule(staff):
    # The rule is shown once, as a query; the JSON box starts empty, so saving the
    # page unchanged is not refused as "both given".
    rules = {"field": "orders", "op": "gte", "value": 2}
    segment = SegmentFactory(name="Repeat", rules=rules)

    page = staff.get(url("change", segment.pk)).content.decode()
    response = staff.post(
        url("change", segment.pk),
        form_data(name="Repeat again", query="orders >= 2", rules=""),
    )

    assert '<textarea name="rules"' in page
    assert 'id="id_rules">\n</textarea>' in page
    assert "null</textarea>" not in page
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("Repeat again", rules)


def test_a_slug_the_service_refuses_is_shown_on_the_form(staff):
    SegmentFactory(name="Old", slug="repeat-buyers")

    response = staff.post(url("add"), form_data())

    assert response.status_code == 200
    assert "A segment with slug repeat-buyers exists." in response.content.decode()
    assert not Segment.objects.filter(name="Repeat buyers").exists()


def test_recompute_action_enqueues_the_whole_base_recompute(
    staff, buyers, eager_celery, django_capture_on_commit_callbacks
):
    segment = SegmentFactory(rules={"field": "orders", "op": "gte", "value": 1})

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff.post(
            url("changelist"),
            {"action": "recompute", ACTION_CHECKBOX_NAME: [segment.pk]},
            follow=True,
        )

    assert len(callbacks) == 1
    assert "Recompute started" in " ".join(messages_of(response))
    assert len(member_ids(segment)) == 2


def test_a_segment_is_deleted_from_its_page_with_its_history_counted(staff):
    membership = membership_create(segment__slug="old-promo")
    segment = membership.segment
    SegmentEventFactory(segment=segment, customer=membership.customer)

    confirm = staff.get(url("delete", segment.pk))
    response = staff.post(url("delete", segment.pk), {"post": "yes"})

    assert "Segment events: 1" in confirm.content.decode()
    assert response.status_code == 302
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not SegmentEvent.objects.filter(segment_id=segment.pk).exists()


def test_a_segment_a_rule_uses_is_kept_and_the_page_says_why(staff):
    used = SegmentFactory(slug="shoe-lovers")
    SegmentFactory(
        slug="loyal", rules={"field": "segment", "op": "in", "value": ["shoe-lovers"]}
    )

    response = staff.post(url("delete", used.pk), {"post": "yes"}, follow=True)

    assert Segment.objects.filter(pk=used.pk).exists()
    assert any("segment loyal" in m for m in messages_of(response))
    listing = staff.get(url("changelist"))
    model_admin = listing.context["cl"].model_admin
    assert "delete_selected" not in model_admin.get_actions(listing.wsgi_request)


# Live preview and explain ------------------------------------------------------------


def test_preview_endpoint_answers_with_count_and_sample(staff, buyers):
    response = staff.get(url("preview"), {"query": "orders >= 1"})

    data = response.json()
    assert data["ok"] is True
    assert data["count"] == 2
    assert {row["id"] for row in data["sample"]} == {
        buyers["repeat"].pk,
        buyers["once"].pk,
    }


def test_preview_endpoint_points_at_syntax_errors(staff):
    data = staff.get(url("preview"), {"query": "orders >="}).json()

    assert data["ok"] is False
    assert "column 10" in data["error"]
    assert data["caret"].endswith("^")


def test_preview_endpoint_reads_json(staff, buyers):
    rules = json.dumps({"field": "nope", "op": "eq", "value": 1})

    data = staff.get(url("preview"), {"rules": rules}).json()

    assert data["ok"] is False
    assert data["error"].startswith("field: unknown field 'nope'")


def test_explain_view_shows_which_conditions_hold(staff, buyers):
    segment = SegmentFactory(
        name="Repeat",
        rules={
            "all": [
                {"field": "orders", "op": "gte", "value": 2},
                {"not": {"field": "last_purchase", "op": "within_days", "value": 30}},
            ]
        },
    )

    response = staff.get(url("explain", segment.pk, buyers["once"].pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Why Otto Once is not in Repeat" in content
    assert "orders &gt;= 2" in content
    assert "customer's value: <strong>1</strong>" in content
    assert content.count("✗") == 3  # all, orders, not
    assert content.count("✓") == 1  # last purchase within 30 days


def test_explain_view_of_an_unknown_customer_is_404(staff):
    segment = SegmentFactory()

    assert staff.get(url("explain", segment.pk, 999_999)).status_code == 404


def test_customer_segments_html_links_to_explanations(db):
    customer = CustomerFactory()
    vip = membership_create(customer=customer, segment__name="VIP").segment
    other = SegmentFactory(name="Other")

    html = customer_segments_html(customer)

    assert "VIP" in html
    assert url("explain", vip.pk, customer.pk) in html
    assert url("explain", other.pk, customer.pk) in html
    assert "Why not in another segment?" in html


# Engine-written rows -----------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["segmentevent", "rfmthresholds"])
def test_engine_written_rows_are_read_only(staff, model_name):
    SegmentEventFactory()

    changelist = staff.get(reverse(f"admin:segments_{model_name}_changelist"))
    add = staff.get(reverse(f"admin:segments_{model_name}_add"))

    assert changelist.status_code == 200
    assert add.status_code == 403


def test_segment_event_changelist_has_pinned_queries(
    staff, django_assert_max_num_queries
):
    for _ in range(20):
        SegmentEventFactory()

    with django_assert_max_num_queries(5):
        response = staff.get(reverse("admin:segments_segmentevent_changelist"))

    assert response.status_code == 200


def test_members_link_lists_the_segment_members_in_the_customer_changelist(staff):
    membership = membership_create()
    outsider = CustomerFactory()

    response = staff.get(
        reverse("admin:crm_customer_changelist"), {"segment": membership.segment.pk}
    )

    assert response.status_code == 200
    shown = {c.pk for c in response.context["cl"].result_list}
    assert shown == {membership.customer_id}
    assert outsider.pk not in shown


def test_customer_list_filters_by_segment_through_the_core_hook(staff, buyers):
    segment = SegmentFactory(
        name="Repeat", slug="repeat", rules={"field": "orders", "op": "gte", "value": 2}
    )
    recompute_all()

    response = staff.get(
        reverse("admin:crm_customer_changelist"), {"segment": segment.pk}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "Rita" in content
    assert "Otto" not in content


def test_rebuild_reports_the_customers_whose_segments_moved(store, buyers):
    from io import StringIO

    from django.core.management import call_command

    def rebuild() -> str:
        out = StringIO()
        call_command("rebuild_segments", stdout=out, stderr=StringIO())
        return out.getvalue()

    SegmentFactory(name="Repeat", rules={"field": "orders", "op": "gte", "value": 2})
    rebuild()  # builds the new segment: its first members are no movement
    buy(store, buyers["once"])  # Otto's second order: he enters "Repeat"

    assert "1 customer entered or left a segment" in rebuild()
    assert "0 customers entered or left a segment" in rebuild()


def test_the_first_rebuild_of_a_base_says_its_history_starts_now(buyers):
    from io import StringIO

    from django.core.management import call_command

    from segments.models import CustomerSegmentState

    CustomerSegmentState.objects.all().delete()
    out = StringIO()

    call_command("rebuild_segments", stdout=out, stderr=StringIO())

    assert "Segments built for the first time" in out.getvalue()
    assert "entered or left" not in out.getvalue()


def test_field_help_shows_the_query_syntax_of_each_field(staff):
    content = staff.get(url("add")).content.decode()

    assert "<code>total_spent =, total_spent !=, total_spent &lt;," in content
    assert "last_purchase within N days" in content


def test_a_misspelt_field_in_a_query_suggests_the_right_one(staff):
    response = staff.post(url("add"), form_data(query="total_spend > 100"))

    content = response.content.decode()
    assert "unknown field &#x27;total_spend&#x27;; did you mean" in content
    assert "&#x27;total_spent&#x27;?" in content
    assert "known fields" not in content


def test_an_operator_error_in_a_query_uses_the_typed_symbol(staff):
    response = staff.post(url("add"), form_data(query='gender > "f"'))

    content = response.content.decode()
    assert "gender does not support &gt;;" in content
    assert "&#x27;gt&#x27;" not in content


def test_a_query_value_keeps_its_case_when_saved_and_shown_again(staff):
    staff.post(url("add"), form_data(query='city = "Barendrecht"'))

    segment = Segment.objects.get(slug="repeat-buyers")
    assert segment.rules == {"field": "city", "op": "eq", "value": "Barendrecht"}
    content = staff.get(url("change", segment.pk)).content.decode()
    assert "city = &quot;Barendrecht&quot;" in content
