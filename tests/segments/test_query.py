import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.fields import FIELDS as FIELD_SPECS
from segments.query import (
    MAX_DEPTH,
    QuerySyntaxError,
    field_syntax,
    format_rule,
    operator_text,
    parse,
)


def leaf(field, op, value):
    return {"field": field, "op": op, "value": value}


# Examples ----------------------------------------------------------------------------

EXAMPLES = {
    "orders >= 2 and total_spent > 100": {
        "all": [leaf("orders", "gte", 2), leaf("total_spent", "gt", 100)]
    },
    "last_purchase within 30 days": leaf("last_purchase", "within_days", 30),
    "last_purchase before 90 days": leaf("last_purchase", "before_days", 90),
    'city in ("Utrecht", "Delft") or not gender = "f"': {
        "any": [
            leaf("city", "in", ["Utrecht", "Delft"]),
            {"not": leaf("gender", "eq", "f")},
        ]
    },
    "rfm_recency >= 4 and orders between 2 and 5": {
        "all": [leaf("rfm_recency", "gte", 4), leaf("orders", "between", [2, 5])]
    },
    'segment in ("vip") and not tags contains "b2b"': {
        "all": [
            leaf("segment", "in", ["vip"]),
            {"not": leaf("tags", "contains", "b2b")},
        ]
    },
    'bought_category_within_days("shoes", 30)': leaf(
        "bought_category_within_days", "eq", {"category": "shoes", "days": 30}
    ),
    "email is set and phone is not set": {
        "all": [leaf("email", "is_set", True), leaf("phone", "is_set", False)]
    },
    "orders != 0 and orders < 10 and orders <= 9 and orders = 3": {
        "all": [
            leaf("orders", "ne", 0),
            leaf("orders", "lt", 10),
            leaf("orders", "lte", 9),
            leaf("orders", "eq", 3),
        ]
    },
    'city not in ("Delft") and has_loyalty_card = true': {
        "all": [leaf("city", "not_in", ["Delft"]), leaf("has_loyalty_card", "eq", True)]
    },
    "total_spent >= 99.5 or total_spent < -0.25": {
        "any": [leaf("total_spent", "gte", 99.5), leaf("total_spent", "lt", -0.25)]
    },
    "true": {"all": []},
    "false": {"any": []},
}


@pytest.mark.parametrize(("text", "expected"), EXAMPLES.items(), ids=list(EXAMPLES))
def test_example_query_parses_to_its_tree_and_formats_back_unchanged(text, expected):
    rule = parse(text)

    assert rule == expected
    assert json.dumps(rule) == json.dumps(expected)
    assert format_rule(rule) == text


def test_integers_stay_int_and_decimals_become_float():
    rule = parse("a = 100 and b = 99.50 and c = 1e3 and d = -7")

    values = [child["value"] for child in rule["all"]]
    assert values == [100, 99.5, 1000.0, -7]
    assert [type(value) for value in values] == [int, float, float, int]


def test_strings_accept_escapes_and_single_quotes():
    rule = parse(r"""a = "say \"hi\" \\ now" and b = 'it\'s' and c = "tab\there" """)

    assert [child["value"] for child in rule["all"]] == [
        'say "hi" \\ now',
        "it's",
        "tab\there",
    ]


def test_strings_are_written_double_quoted_with_escapes():
    rule = leaf("note", "eq", 'a "quote", a \\ and a\nnew line; ünïcødé')

    assert format_rule(rule) == r'note = "a \"quote\", a \\ and a\nnew line; ünïcødé"'


def test_keywords_and_field_names_are_case_insensitive():
    rule = parse('NOT Orders >= 2 AND city IN ("Delft") Or Email IS NOT SET')

    assert format_rule(rule) == (
        'not orders >= 2 and city in ("Delft") or email is not set'
    )


def test_whitespace_and_newlines_between_tokens_are_ignored():
    text = '\n  orders>=2\n\tand\ncity   =   "Delft"  '

    assert format_rule(parse(text)) == 'orders >= 2 and city = "Delft"'


def test_double_equals_reads_as_eq():
    assert parse("orders == 2") == leaf("orders", "eq", 2)


def test_empty_in_list_round_trips():
    assert parse("city in ()") == leaf("city", "in", [])
    assert format_rule(leaf("city", "not_in", [])) == "city not in ()"


# Precedence and grouping ---------------------------------------------------------

A = leaf("a", "eq", 1)
B = leaf("b", "eq", 2)
C = leaf("c", "eq", 3)


def test_and_binds_tighter_than_or():
    assert parse("a = 1 or b = 2 and c = 3") == {"any": [A, {"all": [B, C]}]}
    assert parse("a = 1 and b = 2 or c = 3") == {"any": [{"all": [A, B]}, C]}


def test_not_binds_tighter_than_and():
    assert parse("not a = 1 and b = 2") == {"all": [{"not": A}, B]}


def test_between_takes_its_own_and():
    assert parse('orders between 2 and 5 and city = "Delft"') == {
        "all": [leaf("orders", "between", [2, 5]), leaf("city", "eq", "Delft")]
    }


def test_chains_flatten_into_one_group():
    assert parse("a = 1 and b = 2 and c = 3") == {"all": [A, B, C]}
    assert parse("a = 1 or b = 2 or c = 3") == {"any": [A, B, C]}


def test_parentheses_keep_a_nested_group_its_own_node():
    rule = parse("(a = 1 and b = 2) and c = 3")

    assert rule == {"all": [{"all": [A, B]}, C]}
    assert format_rule(rule) == "(a = 1 and b = 2) and c = 3"


def test_parentheses_around_one_condition_change_nothing():
    assert parse("((a = 1))") == A
    assert parse("(a = 1) and (b = 2)") == {"all": [A, B]}


def test_one_child_groups_are_written_as_all_and_any_calls():
    assert format_rule({"all": [A]}) == "all(a = 1)"
    assert format_rule({"any": [{"all": [A, B]}]}) == "any(a = 1 and b = 2)"
    assert parse("any(a = 1 and b = 2)") == {"any": [{"all": [A, B]}]}


def test_empty_groups_are_true_and_false():
    assert format_rule({"all": []}) == "true"
    assert format_rule({"any": []}) == "false"
    assert parse("not false and all(true)") == {
        "all": [{"not": {"any": []}}, {"all": [{"all": []}]}]
    }


def test_formatter_writes_only_the_needed_parentheses():
    assert format_rule({"any": [{"all": [A, B]}, C]}) == "a = 1 and b = 2 or c = 3"
    assert format_rule({"all": [{"any": [A, B]}, C]}) == "(a = 1 or b = 2) and c = 3"
    assert format_rule({"any": [{"any": [A, B]}, C]}) == "(a = 1 or b = 2) or c = 3"
    assert format_rule({"not": {"all": [A, B]}}) == "not (a = 1 and b = 2)"
    assert format_rule({"not": {"not": A}}) == "not not a = 1"


def test_canonical_text_is_a_fixed_point():
    text = format_rule(parse("NOT (a=1 OR b=2) and ((c=3))"))

    assert text == "not (a = 1 or b = 2) and c = 3"
    assert format_rule(parse(text)) == text


# Errors ----------------------------------------------------------------------------

SYNTAX_ERRORS = [
    # (text, position, fragment of the message)
    ("", 0, "the query is empty"),
    ("   ", 0, "the query is empty"),
    ("orders >= ", 10, 'expected a value after "orders >=" at column 11'),
    ("orders >= and x = 1", 10, 'expected a value after "orders >=" at column 11'),
    ('city = "Delft', 7, "unterminated string"),
    ("city = 'Delft\\'", 7, "unterminated string"),
    ('city = "De\\qlft"', 10, 'unknown escape "\\q"'),
    ("orders ~ 2", 7, 'unknown operator "~" after "orders" at column 8'),
    ("orders => 2", 7, 'unknown operator "=>"'),
    ("orders equals 2", 7, 'unknown operator "equals"'),
    ("orders", 6, 'expected an operator after "orders" at column 7'),
    ("(a = 1 and b = 2", 16, 'expected ")" at column 17 to close the "(" at column 1'),
    ("a = 1)", 5, 'unbalanced parentheses: the ")" at column 6 has no matching'),
    ("(a = 1 b = 2)", 7, 'expected "and", "or" or ")" at column 8'),
    ("a = 1 b = 2", 6, 'expected "and", "or" or the end of the query at column 7'),
    ("a = 1 and", 9, 'expected a condition after "and" at column 10'),
    ("not", 3, 'expected a condition after "not"'),
    ("()", 1, 'expected a condition after "("'),
    ("city = Delft", 7, "text values must be quoted"),
    ("email = null", 8, "there is no null"),
    ('city in "Delft"', 8, 'expected "(" after "city in"'),
    ('city in ("a" "b")', 13, 'expected "," or ")"'),
    ('city in ("a",)', 13, "expected a value"),
    ("city not like 2", 9, 'expected "in" after "city not"'),
    ("orders between 2 or 5", 17, 'expected "and" after "orders between 2"'),
    ("email is", 8, 'expected "set" or "not set" after "email is"'),
    ("email is not", 12, 'expected "set" after "email is not"'),
    ("last_purchase within 2.5 days", 21, "expected a whole number of days"),
    ("last_purchase within 30", 23, 'expected "days" after "last_purchase within 30"'),
    ("bought_category_within_days(shoes, 30)", 28, "expected a quoted category"),
    ('bought_category_within_days("shoes")', 35, 'expected ","'),
    ("all a = 1", 4, 'expected "(" after "all"'),
    ("in = 1", 0, "expected a condition at column 1"),
    ("a = 1e999", 4, "number out of range"),
]


@pytest.mark.parametrize(
    ("text", "position", "message"), SYNTAX_ERRORS, ids=[e[0] for e in SYNTAX_ERRORS]
)
def test_malformed_query_is_reported_at_its_position(text, position, message):
    with pytest.raises(QuerySyntaxError) as excinfo:
        parse(text)

    error = excinfo.value
    assert message in str(error)
    assert error.position == position
    assert (error.line, error.column) == (1, position + 1)
    assert isinstance(error, ValueError)


def test_error_on_a_later_line_reports_line_and_column():
    text = 'orders >= 2 and\n  city = "Delft" and\n  total_spent > '

    with pytest.raises(QuerySyntaxError) as excinfo:
        parse(text)

    error = excinfo.value
    assert (error.position, error.line, error.column) == (len(text), 3, 17)
    assert "at line 3, column 17" in str(error)


def test_caret_points_under_the_error():
    with pytest.raises(QuerySyntaxError) as excinfo:
        parse('orders >= 2 and\n\tcity ~ "Delft"')

    assert excinfo.value.caret() == '\tcity ~ "Delft"\n\t     ^'


def test_first_error_in_the_text_wins():
    with pytest.raises(QuerySyntaxError, match="expected a value"):
        parse('orders >= and city = "unterminated')


def test_deep_nesting_is_a_syntax_error_not_a_crash():
    with pytest.raises(QuerySyntaxError, match="nests deeper"):
        parse("(" * (MAX_DEPTH + 5) + "a = 1" + ")" * (MAX_DEPTH + 5))
    with pytest.raises(QuerySyntaxError, match="nests deeper"):
        parse("not " * (MAX_DEPTH * 3) + "a = 1")


@pytest.mark.parametrize(
    "rule",
    [
        leaf("a", "like", 1),
        leaf("a", "eq", None),
        leaf("a", "eq", float("nan")),
        leaf("a", "in", "x"),
        leaf("a", "between", [1]),
        leaf("a", "is_set", 1),
        leaf("a", "within_days", 2.5),
        leaf("a", "within_days", True),
        leaf("A", "eq", 1),
        leaf("in", "eq", 1),
        leaf("bought_category_within_days", "eq", {"category": "shoes"}),
        leaf("city", "eq", {"category": "shoes", "days": 1}),
        {"all": [A], "any": []},
        {"all": A},
        {"field": "a", "op": "eq"},
        [A],
    ],
    ids=repr,
)
def test_format_rejects_a_tree_it_cannot_write(rule):
    with pytest.raises(ValueError):  # noqa: PT011
        format_rule(rule)


# Round trip ------------------------------------------------------------------------

FIELDS = [
    "orders",
    "total_spent",
    "city",
    "tags",
    "last_purchase",
    "has_loyalty_card",
    "rfm_segment",
    "_private",
    "x9",
]
tricky_text = st.text(alphabet=st.sampled_from("\"'\\ \n\tab()=,é€😀"), max_size=8)
scalars = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    tricky_text,
    st.booleans(),
)


def leaves_for(ops, values):
    return st.builds(leaf, st.sampled_from(FIELDS), st.sampled_from(ops), values)


leaves = st.one_of(
    leaves_for(["eq", "ne", "lt", "lte", "gt", "gte", "contains"], scalars),
    leaves_for(["in", "not_in"], st.lists(scalars, max_size=4)),
    leaves_for(["between"], st.lists(scalars, min_size=2, max_size=2)),
    leaves_for(["is_set"], st.booleans()),
    leaves_for(
        ["within_days", "before_days"], st.integers(min_value=-5, max_value=10**6)
    ),
    st.builds(
        lambda category, days: leaf(
            "bought_category_within_days", "eq", {"category": category, "days": days}
        ),
        st.one_of(st.text(max_size=10), tricky_text),
        st.integers(min_value=0, max_value=3650),
    ),
)
rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: {"all": items}),
        st.lists(children, max_size=4).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(rules)
def test_every_rule_survives_a_round_trip_through_text(rule):
    text = format_rule(rule)
    parsed = parse(text)

    assert parsed == rule
    # json.dumps tells 1 from 1.0 and True, which == does not.
    assert json.dumps(parsed) == json.dumps(rule)
    assert format_rule(parsed) == text


def test_operator_text_is_the_query_spelling():
    assert [operator_text(op) for op in ("gt", "ne", "not_in", "before_days")] == [
        ">",
        "!=",
        "not in (...)",
        "before N days",
    ]


def test_field_syntax_lists_each_operator_as_typed_and_parses():
    assert field_syntax("last_purchase", FIELD_SPECS["last_purchase"].ops) == (
        "last_purchase is set / is not set, last_purchase within N days, "
        "last_purchase before N days"
    )
    assert ">= " not in field_syntax("city", FIELD_SPECS["city"].ops)
    assert field_syntax("city", FIELD_SPECS["city"].ops).startswith("city =, city !=")
    example = field_syntax(
        "bought_category_within_days", FIELD_SPECS["bought_category_within_days"].ops
    )
    assert parse(example.replace("N", "30"))["field"] == "bought_category_within_days"
