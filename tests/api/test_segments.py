from datetime import timedelta

from django.utils import timezone

from crm.services import LineInput, receipt_record
from personas.services import persona_create
from segments.models import (
    CustomerSegmentState,
    RfmThresholds,
    Segment,
    SegmentEvent,
)
from segments.services.engine import recompute_all
from tests.crm.factories import CustomerFactory
from tests.segments.factories import (
    SegmentEventFactory,
    SegmentFactory,
    membership_create,
)

from .conftest import errors_of

URL = "/api/v1/segments/"


def test_marketer_creates_a_segment_from_a_query_and_gets_both_forms(
    marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer.post(
            URL, {"name": "Repeat buyers", "query": "orders >= 2"}, format="json"
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "repeat-buyers"
    assert body["rules"] == {"field": "orders", "op": "gte", "value": 2}
    assert body["query"] == "orders >= 2"
    # The recompute starts once the segment is committed.
    assert callbacks


def test_rules_and_query_together_or_neither_is_refused(marketer):
    both = marketer.post(
        URL,
        {
            "name": "X",
            "query": "orders >= 2",
            "rules": {"field": "orders", "op": "gte", "value": 2},
        },
        format="json",
    )
    neither = marketer.post(URL, {"name": "Y"}, format="json")

    assert errors_of(both) == [("rules", "rules_or_query")]
    assert errors_of(neither) == [("rules", "rules_or_query")]


def test_a_syntax_error_in_the_query_is_a_field_error(marketer):
    response = marketer.post(URL, {"name": "X", "query": "orders >>> 2"}, format="json")

    assert response.status_code == 400
    assert errors_of(response)[0][0] == "query"


def test_an_unknown_name_is_a_400_saying_what_to_fix(marketer):
    response = marketer.post(
        URL, {"name": "X", "query": "total_spend > 100"}, format="json"
    )
    tag = marketer.post(
        URL,
        {"name": "Y", "rules": {"field": "tags", "op": "contains", "value": "vip"}},
        format="json",
    )
    category = marketer.post(
        URL, {"name": "Z", "query": 'favourite_category = "shoes"'}, format="json"
    )

    assert response.status_code == 400
    assert errors_of(response) == [("query", "invalid_rule")]
    [error] = response.json()["errors"]
    assert "did you mean 'total_spent'?" in error["message"]
    assert "known fields" not in error["message"]
    assert tag.status_code == 400
    assert errors_of(tag) == [("rules", "invalid_rule")]
    assert "unknown tag 'vip'" in tag.json()["errors"][0]["message"]
    assert category.status_code == 400
    assert "unknown category 'shoes'" in category.json()["errors"][0]["message"]
    assert not Segment.objects.filter(slug__in=["x", "y", "z"]).exists()


def test_a_typed_operator_error_uses_the_typed_symbol(marketer):
    response = marketer.post(URL, {"name": "X", "query": 'city < "b"'}, format="json")

    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert message.startswith("op: city does not support <;")
    assert "lt" not in message.split(";")[0]


def test_update_changes_the_rule_and_deactivates(marketer):
    SegmentFactory(slug="vip", name="VIP")

    changed = marketer.patch(f"{URL}vip/", {"query": "orders >= 5"}, format="json")
    off = marketer.patch(f"{URL}vip/", {"is_active": False}, format="json")

    assert changed.json()["rules"]["value"] == 5
    assert off.json()["is_active"] is False


def test_tills_cannot_see_segments_and_readers_cannot_write(till, reader):
    SegmentFactory(slug="vip")

    assert till.get(URL).status_code == 403
    assert reader.get(URL).status_code == 200
    assert (
        reader.post(
            URL, {"name": "X", "query": "orders >= 1"}, format="json"
        ).status_code
        == 403
    )


def test_preview_counts_and_samples_without_saving(reader):
    CustomerFactory(city="Leiden")
    CustomerFactory(city="Delft")
    segments_before = Segment.objects.count()

    response = reader.post(
        f"{URL}preview/", {"query": 'city = "Leiden"', "limit": 5}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["count"] == 1
    assert response.json()["sample"][0]["email"]
    assert Segment.objects.count() == segments_before


def test_members_page_through_with_entered_at(reader, django_assert_max_num_queries):
    segment = SegmentFactory(slug="vip")
    for _ in range(5):
        membership_create(segment=segment)

    seen, url = [], f"{URL}vip/members/?page_size=2"
    while url:
        with django_assert_max_num_queries(4):
            page = reader.get(url).json()
        seen += page["results"]
        url = page["next"]

    assert len({m["id"] for m in seen}) == 5
    assert set(seen[0]) == {"id", "email", "name", "entered_at"}


def test_history_lists_entries_and_exits(reader):
    segment = SegmentFactory(slug="vip")
    SegmentEventFactory(segment=segment, kind="entered", cause="contact")
    SegmentEventFactory(segment=segment, kind="exited", cause="time")

    events = reader.get(f"{URL}vip/history/", {"kind": "exited"}).json()["results"]

    assert [e["kind"] for e in events] == ["exited"]


def test_recompute_is_accepted_and_queued(marketer, django_capture_on_commit_callbacks):
    SegmentFactory(slug="vip")

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer.post(f"{URL}vip/recompute/")

    assert response.status_code == 202
    assert response.json() == {"segment": "vip", "status": "queued"}
    assert len(callbacks) == 1
    assert marketer.post(f"{URL}nope/recompute/").status_code == 404


def test_segment_filter_and_list_query_count(reader, django_assert_max_num_queries):
    SegmentFactory(slug="a", kind="journey")
    SegmentFactory(slug="b", kind="demographic")

    with django_assert_max_num_queries(3):
        response = reader.get(URL, {"kind": "journey"})

    assert [s["slug"] for s in response.json()["results"]] == ["a"]


def test_deleting_a_segment_drops_it_its_history_and_its_members_arrays(marketer):
    membership = membership_create(segment__slug="old-promo")
    segment = membership.segment

    response = marketer.delete(f"{URL}old-promo/")
    recompute_all()

    assert response.status_code == 204
    assert not Segment.objects.filter(slug="old-promo").exists()
    assert not SegmentEvent.objects.filter(segment_id=segment.pk).exists()
    assert not CustomerSegmentState.objects.filter(
        segment_ids__includes=segment.pk
    ).exists()
    assert marketer.get(f"{URL}old-promo/").status_code == 404


def test_a_segment_a_rule_still_uses_is_not_deleted(marketer):
    SegmentFactory(slug="shoe-lovers")
    SegmentFactory(
        slug="loyal-shoe-lovers",
        rules={"field": "segment", "op": "in", "value": ["shoe-lovers"]},
    )
    persona_create(
        name="Nina",
        rules={"field": "segment", "op": "in", "value": ["shoe-lovers"]},
        recompute=False,
    )

    response = marketer.delete(f"{URL}shoe-lovers/")

    assert response.status_code == 400
    assert errors_of(response) == [("segment", "segment_in_use")]
    message = response.json()["errors"][0]["message"]
    assert "segment loyal-shoe-lovers" in message
    assert "persona nina" in message
    assert Segment.objects.filter(slug="shoe-lovers").exists()


def test_only_marketers_and_admins_delete_segments(till, reader):
    SegmentFactory(slug="keep")

    for client in (till, reader):
        assert client.delete(f"{URL}keep/").status_code == 403
    assert Segment.objects.filter(slug="keep").exists()


def test_recompute_computes_missing_rfm_thresholds_first(
    marketer, store, products, django_capture_on_commit_callbacks
):
    for days in (0, 10, 20, 30, 40):
        receipt_record(
            store=store,
            customer=CustomerFactory(),
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
            purchased_at=timezone.now() - timedelta(days=days, hours=12),
        )
    RfmThresholds.objects.all().delete()
    SegmentFactory(slug="vip")

    with django_capture_on_commit_callbacks():
        response = marketer.post(f"{URL}vip/recompute/")

    assert response.status_code == 202
    thresholds = RfmThresholds.objects.get()
    assert thresholds.customers == 5
    assert thresholds.recency == [8.0, 16.0, 24.0, 32.0]


def test_a_rule_nested_past_the_limit_is_a_400_naming_the_limit(reader):
    rule = {"field": "orders", "op": "gte", "value": 1}
    for _ in range(150):
        rule = {"not": rule}

    response = reader.post(f"{URL}preview/", {"rules": rule}, format="json")

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "rules"
    assert "at most 100 levels" in error["message"]
    assert len(error["message"]) < 200


def test_a_body_nested_deeper_than_json_can_follow_is_a_400(reader):
    leaf = '{"field": "orders", "op": "gte", "value": 1}'
    body = '{"rules": ' + '{"not": ' * 5000 + leaf + "}" * 5000 + "}"

    response = reader.post(f"{URL}preview/", body, content_type="application/json")

    assert response.status_code == 400
    assert "nests too deeply" in response.json()["errors"][0]["message"]
