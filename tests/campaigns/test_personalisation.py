import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns.models import Message
from campaigns.personalisation import (
    customer_contexts,
    message_render,
    message_validate,
    template_validate,
)
from crm.models import CustomerStats, LoyaltyCard
from crm.services import customer_erase
from tests.crm.factories import (
    CategoryFactory,
    CustomerFactory,
    LoyaltyCardFactory,
    StoreFactory,
)


def validation_message(text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        template_validate(text)
    return " ".join(caught.value.messages)


# Validation ----------------------------------------------------------------------


def test_misspelt_field_names_the_field_and_every_usable_one():
    message = validation_message("Hello\n{{ frist_name }}!")
    assert message == (
        "Line 2: {{ frist_name }} is not a field you can use; use one of: "
        "first_name, store, points, tier, favourite_category, recommendations, "
        "unsubscribe_url."
    )


def test_unknown_field_inside_a_branch_not_taken_is_still_found():
    message = validation_message(
        "{% if tier == 'Gold' %}{{ customer.email }}{% endif %}"
    )
    assert "{{ customer.email }} is not a field you can use" in message


def test_unknown_field_as_a_filter_argument_is_found():
    assert "{{ nickname }}" in validation_message("{{ first_name|default:nickname }}")
    assert "{{ nickname }}" in validation_message(
        "{% spaceless %}{% filter default:nickname %}x{% endfilter %}{% endspaceless %}"
    )


def test_syntax_error_says_the_line():
    message = validation_message("Hi\n\n{% if first_name %}unclosed")
    assert message.startswith("Line 3:")
    assert "endif" in message


@pytest.mark.parametrize(
    ("text", "line", "closing"),
    [
        ("Hi {{ first_name", 1, "}}"),
        ("Hello\n{{ first_name }}, see {% if points", 2, "%}"),
    ],
)
def test_an_unclosed_field_or_tag_is_refused_not_sent_as_text(text, line, closing):
    message = validation_message(text)
    assert message.startswith(f"Line {line}:"), message
    assert f"end it with {closing}" in message


def test_closed_fields_beside_braces_still_pass():
    template_validate("Hi {{ first_name }}, {% if points %}{{ points }}{% endif %} }")


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("{% include 'email/receipt.html' %}", "include"),
        ("{% extends 'base.html' %}", "extends"),
        ("{% load static %}", "load"),
        ("{% debug %}", "debug"),
        ("{% url 'admin:index' %}", "url"),
        ("{% autoescape off %}{{ first_name }}{% endautoescape %}", "autoescape"),
    ],
)
def test_tags_that_reach_files_or_internals_are_refused(text, tag):
    message = validation_message(text)
    assert f"{{% {tag} %}} cannot be used in a message" in message


def test_safe_filter_is_refused_so_a_customer_name_cannot_inject_html():
    assert "safe" in validation_message("{{ first_name|safe }}")


def test_a_filter_that_fails_on_a_value_is_caught_at_validation():
    assert "cannot be rendered" in validation_message("{{ points|divisibleby:0 }}")


@pytest.mark.parametrize(
    "text",
    [
        "Hi {{ first_name|default:'friend' }}, {{ points }} points at {{ store }}",
        "{% for product in recommendations %}{{ forloop.counter }}. {{ product.name }}"
        "{% empty %}Our picks for {{ favourite_category }}{% endfor %}",
        "{% with name=first_name %}{{ name|upper }}{% endwith %}",
        "{% if tier == 'Gold' and points > 100 %}VIP{% elif not tier %}join{% endif %}",
        "{% firstof first_name 'friend' as who %}{{ who }}",
        "{% filter upper %}{{ first_name }}{% endfilter %}",
        "{% now 'Y' as year %}{{ year }}",
        "{% comment %}{% include 'x' %}{% endcomment %}{{ unsubscribe_url }}",
    ],
)
def test_valid_templates_pass(text):
    template_validate(text)


def test_loop_variable_does_not_outlive_its_loop():
    message = validation_message(
        "{% for product in recommendations %}{% endfor %}{{ product.name }}"
    )
    assert "{{ product.name }} is not a field" in message


def test_message_validate_keys_errors_by_field():
    message = Message(channel="email", subject="{{ frist_name }}", body_text="ok")
    with pytest.raises(ValidationError) as caught:
        message_validate(message=message)
    assert set(caught.value.message_dict) == {"subject"}


# Rendering -----------------------------------------------------------------------


def email_message(**fields) -> Message:
    return Message(channel="email", **fields)


def test_missing_values_render_their_fallbacks():
    message = email_message(
        subject="Hi {{ first_name }}",
        body_text="{{ points }} points as {{ tier }} at {{ store }}: "
        "{{ favourite_category }}",
    )
    rendered = message_render(message=message, context={})
    assert rendered.subject == "Hi there"
    assert rendered.text == "0 points as Basic at our store: our collection"


def test_a_missing_value_is_still_falsy_for_if_and_default():
    message = email_message(
        body_text="{% if first_name %}named{% else %}anonymous{% endif %} "
        "{{ first_name|default:'friend' }}"
    )
    assert message_render(message=message, context={}).text == "anonymous friend"
    assert (
        message_render(message=message, context={"first_name": "Sarah"}).text
        == "named Sarah"
    )


def test_html_escapes_customer_values_and_text_does_not():
    message = email_message(
        subject="{{ first_name }}",
        body_text="{{ first_name }}",
        body_html="<p>{{ first_name }}</p>",
    )
    rendered = message_render(message=message, context={"first_name": "<b>Jo & Co</b>"})
    assert rendered.html == "<p>&lt;b&gt;Jo &amp; Co&lt;/b&gt;</p>"
    assert rendered.text == "<b>Jo & Co</b>"
    assert rendered.subject == "<b>Jo & Co</b>"


def test_subject_is_one_line_whatever_the_values():
    message = email_message(subject="Hi {{ first_name }}\n{{ store }}")
    rendered = message_render(message=message, context={"first_name": "Jo\r\nBcc: x"})
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject


def test_sms_gets_no_html_part():
    message = Message(
        channel="sms", body_text="Hi {{ first_name }}", body_html="<b>x</b>"
    )
    rendered = message_render(message=message, context={"first_name": "Jo"})
    assert (rendered.text, rendered.html) == ("Hi Jo", "")


def test_only_plain_values_reach_the_template():
    class Secret:
        password = "hunter2"

        def __str__(self) -> str:
            return "plain text"

    message = email_message(body_text="{{ first_name }}|{{ first_name.password }}")
    rendered = message_render(message=message, context={"first_name": Secret()})
    assert rendered.text == "plain text|"


text_value = st.one_of(st.none(), st.just(""), st.text(max_size=20))
contexts = st.fixed_dictionaries(
    {},
    optional={
        "first_name": text_value,
        "store": text_value,
        "tier": text_value,
        "favourite_category": text_value,
        "points": st.one_of(
            st.none(), st.integers(-(10**6), 10**6), st.text(max_size=5)
        ),
        "recommendations": st.one_of(
            st.none(),
            st.text(max_size=5),
            st.lists(st.fixed_dictionaries({"name": st.text(max_size=10)}), max_size=3),
        ),
        "unsubscribe_url": text_value,
    },
)
TEMPLATE = (
    "{{ first_name }}|{{ store }}|{{ tier }}|{{ favourite_category }}|{{ points }}|"
    "{% for product in recommendations %}{{ product.name }},{% endfor %}|"
    "{{ unsubscribe_url }}"
)


def expected_text(context: dict) -> str:
    """The plain-Python oracle: present values verbatim, else the fallback."""

    def text(name: str, fallback: str) -> str:
        value = context.get(name)
        return value if value else fallback

    points = context.get("points")
    try:
        points = int(points)
    except (TypeError, ValueError):
        points = 0
    recommendations = context.get("recommendations")
    if not isinstance(recommendations, list):
        recommendations = []
    return "|".join(
        [
            text("first_name", "there"),
            text("store", "our store"),
            text("tier", "Basic"),
            text("favourite_category", "our collection"),
            str(points),
            "".join(f"{product['name']}," for product in recommendations),
            text("unsubscribe_url", ""),
        ]
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(context=contexts)
def test_rendering_never_fails_and_falls_back_for_missing_values(context):
    message = email_message(subject=TEMPLATE, body_text=TEMPLATE, body_html=TEMPLATE)
    rendered = message_render(message=message, context=context)
    assert rendered.text == expected_text(context)
    assert rendered.subject == " ".join(expected_text(context).split())


# Contexts ------------------------------------------------------------------------


@pytest.mark.django_db
def test_contexts_carry_store_points_tier_and_favourite_category():
    store = StoreFactory(name="Loyalist Utrecht")
    shoes = CategoryFactory(name="Shoes")
    sarah = CustomerFactory(first_name="Sarah", home_store=store)
    CustomerStats.objects.filter(customer=sarah).update(favourite_category=shoes)
    LoyaltyCardFactory(customer=sarah, tier="silver", points=40)
    LoyaltyCardFactory(customer=sarah, tier="gold", points=60)
    LoyaltyCardFactory(
        customer=sarah, tier="platinum", points=1000, status=LoyaltyCard.Status.LOST
    )
    bare = CustomerFactory(first_name="", stats=None)

    contexts = customer_contexts([sarah.pk, bare.pk])

    assert contexts[sarah.pk] == {
        "first_name": "Sarah",
        "store": "Loyalist Utrecht",
        "points": 100,
        "tier": "Gold",
        "favourite_category": "Shoes",
        "recommendations": [],
    }
    assert contexts[bare.pk] == {
        "first_name": None,
        "store": None,
        "points": None,
        "tier": None,
        "favourite_category": None,
        "recommendations": [],
    }


@pytest.mark.django_db
def test_erased_customers_have_no_context():
    kept, erased = CustomerFactory(), CustomerFactory()
    customer_erase(customer=erased, by=None)
    assert set(customer_contexts([kept.pk, erased.pk])) == {kept.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("customers", [1, 12])
def test_contexts_take_one_query_however_many_customers(
    customers, django_assert_num_queries
):
    store = StoreFactory()
    ids = []
    for _ in range(customers):
        customer = CustomerFactory(home_store=store)
        LoyaltyCardFactory(customer=customer, points=5)
        ids.append(customer.pk)
    with django_assert_num_queries(1):
        contexts = customer_contexts(ids)
    assert len(contexts) == customers
