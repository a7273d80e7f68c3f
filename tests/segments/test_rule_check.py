"""What rule_check says about a rule it refuses, and what it keeps of one it accepts."""

import pytest

from crm.models import Category, Customer, Tag
from personas.services import persona_create
from segments.compiler import context_build, rule_check, rule_condition
from segments.fields import FIELDS, RuleError
from segments.query import parse
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def refusal(rule, **kwargs) -> RuleError:
    with pytest.raises(RuleError) as caught:
        rule_check(rule, **kwargs)
    return caught.value


def test_a_misspelt_field_suggests_the_right_one_without_listing_all():
    error = refusal({"field": "total_spend", "op": "gt", "value": 100})

    assert error.path == "field"
    assert "unknown field 'total_spend'" in error.message
    assert "did you mean 'total_spent'?" in error.message
    # Not every field name: at most the few close ones.
    assert sum(name in error.message for name in FIELDS) <= 3


def test_a_field_unlike_any_points_to_the_field_help():
    error = refusal({"field": "zzzz", "op": "eq", "value": 1})

    assert (
        error.message == "unknown field 'zzzz'; see the list of fields in the rule help"
    )


def test_a_typed_rule_names_operators_as_typed():
    error = refusal(parse("city > 3"), typed=True)

    assert error.path == "op"
    assert "city does not support >;" in error.message
    assert "'gt'" not in error.message
    assert "gt," not in error.message
    assert "in (...)" in error.message

    error = refusal(parse("orders before 3 days"), typed=True)
    assert "orders does not support before N days" in error.message
    assert "before_days" not in error.message


def test_a_typed_value_error_names_the_typed_operator():
    error = refusal(parse('orders >= "two"'), typed=True)

    assert error.message.startswith("orders >=: expected a whole number")


def test_a_json_rule_keeps_json_operator_names_and_suggests_one():
    error = refusal({"field": "orders", "op": "gtee", "value": 2})

    assert "orders does not support 'gtee'" in error.message
    assert "'gte'" in error.message
    assert "did you mean 'gte'" in error.message


@pytest.mark.parametrize(
    ("rule", "kind", "suggestion"),
    [
        ({"field": "tags", "op": "contains", "value": "outdor"}, "tag", "outdoor"),
        (
            {"field": "categories_bought", "op": "contains", "value": "shoe"},
            "category",
            "shoes",
        ),
        (
            {"field": "favourite_category", "op": "eq", "value": "shoe"},
            "category",
            "shoes",
        ),
        (
            {
                "field": "bought_category_within_days",
                "op": "eq",
                "value": {"category": "shoe", "days": 3},
            },
            "category",
            "shoes",
        ),
        (
            {"field": "persona", "op": "eq", "value": "bargain-hunters"},
            "persona",
            "bargain-hunter",
        ),
        ({"field": "segment", "op": "in", "value": ["vips"]}, "segment", "vip"),
    ],
)
def test_unknown_names_of_every_kind_are_errors_with_a_suggestion(
    rule, kind, suggestion
):
    Tag.objects.create(name="Outdoor", slug="outdoor")
    Category.objects.create(name="Shoes", slug="shoes")
    persona_create(
        name="Bargain hunter",
        slug="bargain-hunter",
        status="active",
        rules={"field": "orders", "op": "gte", "value": 1},
    )

    error = refusal(rule, segment_rules={"vip": {"all": []}})

    assert error.path == "value"
    assert f"unknown {kind} " in error.message
    assert f"did you mean '{suggestion}'?" in error.message


def test_an_unknown_name_with_nothing_close_says_what_to_use():
    error = refusal({"field": "tags", "op": "contains", "value": "vip"})

    assert error.message == "unknown tag 'vip'; use the slug of an existing tag"


def test_known_names_pass_and_is_set_needs_none():
    Tag.objects.create(name="Outdoor", slug="outdoor")

    rule = {
        "all": [
            {"field": "tags", "op": "contains", "value": "Outdoor"},
            {"field": "categories_bought", "op": "is_set", "value": True},
        ]
    }

    assert rule_check(rule)["all"][0]["value"] == "outdoor"


def test_text_values_keep_their_case():
    checked = rule_check(parse('city = "Barendrecht" or region in ("Zuid-Holland")'))

    assert checked["any"][0]["value"] == "Barendrecht"
    assert checked["any"][1]["value"] == ["Zuid-Holland"]


def test_a_text_value_kept_as_typed_still_matches_ignoring_capitals():
    here = CustomerFactory(city="BARENDRECHT")
    CustomerFactory(city="Delft")
    checked = rule_check(parse('city in ("Barendrecht", "Rotterdam")'))

    matched = Customer.objects.filter(rule_condition(checked, context_build()))

    assert list(matched.values_list("pk", flat=True)) == [here.pk]
