"""The vocabulary of segment rules: every field a rule can test, in one registry.

Each field knows its operators, checks its values and builds the ORM condition for a
leaf `{"field": ..., "op": ..., "value": ...}` relative to `Customer`. A leaf is never
NULL in SQL: a comparison with a missing value is false, so `not` of it is true.
Fields whose truth can change while the customer does nothing also say when that
can next happen (`time_candidates`), which feeds the time path.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower, NullIf
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from django.utils.text import slugify

from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    LoyaltyCard,
)
from crm.querysets import active_cards, best_card_tier, card_points

from .query import call_field_register

COMPARISON_OPS = frozenset(
    {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between"}
)
EQUALITY_OPS = frozenset({"eq", "ne", "in", "not_in"})
TIME_OPS = frozenset({"within_days", "before_days"})

RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)


class RuleError(ValueError):
    """A rule that cannot be compiled; `path` points into the JSON tree."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class PersonaRule:
    """An active persona as the compiler sees it."""

    pk: int
    slug: str
    rules: dict


@dataclass
class Context:
    """Everything a compile needs besides the rule: the clock and stored figures.

    `personas` are the active personas in assignment order (priority, then id);
    None means "not loaded", and the `persona` field loads them when it needs them.
    """

    now: datetime
    today: date
    rfm: Any = None  # segments.models.RfmThresholds or None
    segment_rules: Mapping[str, dict] = field(default_factory=dict)
    stack: tuple[str, ...] = ()
    personas: tuple[PersonaRule, ...] | None = None
    # The customer-id range a whole-base pass evaluates, or None.
    customer_ids: tuple[int, int] | None = None
    # Leave the clock open in the SQL (see `clock`): the batch query is compiled
    # once and run at many clocks.
    open_clock: bool = False


@dataclass(frozen=True)
class ClockAt:
    """A query parameter standing for "the evaluation's clock plus `offset`"."""

    offset: timedelta


class OpenClock(Expression):
    """The clock plus `offset`, compiled to a `ClockAt` parameter that the caller
    replaces by a datetime when it runs the query (segments.services.batch_sql)."""

    output_field = DateTimeField()

    def __init__(self, offset: timedelta) -> None:
        super().__init__()
        self.offset = offset

    def as_sql(self, compiler, connection):
        return "%s", [ClockAt(self.offset)]


def clock(ctx: Context, offset: timedelta = timedelta(0)) -> datetime | Expression:
    """The moment `offset` from the context's clock, as rules compare it.

    Every condition that depends on the clock gets it here, so a compile with
    `open_clock` leaves no moment but the open ones in its SQL.
    """
    if ctx.open_clock:
        return OpenClock(offset)
    return ctx.now + offset


def in_pass(rows: QuerySet, ctx: Context) -> QuerySet:
    """`rows` (with a customer_id) cut to the pass's customer-id range, if any.

    An EXISTS over many customers becomes a hashed subplan: PostgreSQL reads the
    whole inner table once per query. Without the range, every range of a
    whole-base pass would read every customer's rows (16 of a range's 25 s at a
    million customers); with it, each reads its own.
    """
    if ctx.customer_ids is None:
        return rows
    low, high = ctx.customer_ids
    # gte and lte: `range` is not a lookup of foreign keys.
    return rows.filter(customer_id__gte=low, customer_id__lte=high)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    ops: frozenset[str]
    help: str
    # None only for `segment`, which the compiler inlines.
    condition: Callable[[Context, str, Any], Q] | None = None
    value: Callable[[Context], Expression] | None = None
    check_value: Callable[[str, Any], Any] | None = None
    time_candidates: Callable[[Context, str, Any], list[Expression]] | None = None
    choices: tuple[str, ...] = ()
    # What the values name, checked by the compiler against what exists:
    # "category", "tag", "persona" or a kind in REFERENCES; "" for plain values.
    refers_to: str = ""
    # For a field whose value is {ARGUMENT: slug, "days": N}, the argument's key;
    # the query language writes it like a call: `field("slug", N)`.
    argument: str = ""
    # For explanations: shown(ctx, leaf value) is the customer's value to show
    # (when `value` cannot say it without the leaf's value), and says(ctx, leaf
    # value, customer's value) the sentence saying it in words.
    shown: Callable[[Context, Any], Expression] | None = None
    says: Callable[[Context, Any, Any], str] | None = None


@dataclass(frozen=True)
class Reference:
    """A kind of name rules may refer to, defined by an app built on segments."""

    load: Callable[[], Iterable[str]]
    # What to do about an unknown name, when no known name is close.
    fix: str


FIELDS: dict[str, FieldSpec] = {}
# Kinds of names besides categories, tags and personas, by `refers_to`.
REFERENCES: dict[str, Reference] = {}


def register(spec: FieldSpec) -> FieldSpec:
    FIELDS[spec.name] = spec
    if spec.argument:
        call_field_register(spec.name, spec.argument)
    return spec


def reference_register(kind: str, reference: Reference) -> None:
    REFERENCES[kind] = reference


# Building blocks ------------------------------------------------------------------


def as_decimal(value: Any) -> Any:
    if isinstance(value, list):
        return [as_decimal(item) for item in value]
    if isinstance(value, bool):
        return value
    return Decimal(str(value))


def _compared(kind: str, value: Any) -> Any:
    """A checked value as the column expression of a `kind` field compares it."""
    if kind == "decimal":
        return as_decimal(value)
    if kind == "text":
        # text_column() lower-cases the column; values are stored as typed.
        if isinstance(value, list):
            return [item.lower() for item in value]
        return value.lower() if isinstance(value, str) else value
    return value


class Money(Func):
    """A money column as rules compare it.

    PostgreSQL's numeric is exact. SQLite keeps decimals as floats, so a sum such as
    3 x 59.95 lands a hair above 179.85, and "> 179.85" would hold for a customer
    who spent exactly that: there the column is rounded to cents first.
    """

    template = "%(expressions)s"
    output_field = DecimalField(max_digits=14, decimal_places=2)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            # CAST gives the result the column's numeric affinity, so values bound
            # as text still compare as numbers.
            template="CAST(ROUND(%(expressions)s, 2) AS NUMERIC)",
            **extra_context,
        )


def present(expression: Expression) -> Q:
    return Q(IsNull(expression, False))


def compare(expression: Expression, op: str, value: Any) -> Q:
    """A never-NULL condition comparing `expression` with a checked value."""
    has = present(expression)
    match op:
        case "eq":
            return has & Q(Exact(expression, value))
        case "ne":
            return has & ~Q(Exact(expression, value))
        case "lt":
            return has & Q(LessThan(expression, value))
        case "lte":
            return has & Q(LessThanOrEqual(expression, value))
        case "gt":
            return has & Q(GreaterThan(expression, value))
        case "gte":
            return has & Q(GreaterThanOrEqual(expression, value))
        case "in":
            return has & Q(In(expression, list(value))) if value else Q(pk__in=[])
        case "not_in":
            return has & ~Q(In(expression, list(value))) if value else has
        case "between":
            low, high = value
            return (
                has
                & Q(GreaterThanOrEqual(expression, low))
                & Q(LessThanOrEqual(expression, high))
            )
        case "is_set":
            return has if value else ~has
    raise RuleError("op", f"unsupported operator {op!r}")


def boolean(condition: Q, op: str, value: bool) -> Q:
    wanted = value if op == "eq" else not value
    return condition if wanted else ~condition


def days_ago(ctx: Context, days: int) -> datetime | Expression:
    return clock(ctx, -timedelta(days=days))


def shifted(expression: Expression, days: float) -> Expression:
    return ExpressionWrapper(
        expression + Value(timedelta(days=days)), output_field=DateTimeField()
    )


# Value checks ----------------------------------------------------------------------


def _number(value: Any, *, decimal: bool) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if decimal:
        # Stored rules stay JSON: the number is kept as given, checked here and
        # turned into a Decimal when compiled.
        if not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        if not Decimal(str(value)).is_finite():
            raise ValueError("expected a finite number")
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected a whole number, got {value!r}")


def checker(kind: str, choices: tuple[str, ...] = ()) -> Callable[[str, Any], Any]:
    def scalar(value: Any) -> Any:
        if kind == "int":
            return _number(value, decimal=False)
        if kind == "decimal":
            return _number(value, decimal=True)
        if not isinstance(value, str):
            raise ValueError(f"expected a text value in quotes, got {value!r}")
        if choices and value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        # Kept as typed ("Barendrecht"); text fields compare ignoring capitals.
        return value

    def check(op: str, value: Any) -> Any:
        if op == "is_set":
            if not isinstance(value, bool):
                raise ValueError("is_set takes true or false")
            return value
        if op in ("in", "not_in"):
            if not isinstance(value, list):
                raise ValueError(f"{op} takes a list of values")
            return [scalar(item) for item in value]
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ValueError("between takes [low, high]")
            low, high = (scalar(item) for item in value)
            if low > high:
                raise ValueError(f"between needs low <= high, got [{low}, {high}]")
            return [low, high]
        if op in TIME_OPS:
            return days_value(value)
        return scalar(value)

    return check


def days_value(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of days >= 0, got {value!r}")
    return value


def check_bool(op: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _check_slugs(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a list of segment slugs")
    return [check_slug("eq", item) for item in value]


def check_slug(op: str, value: Any) -> Any:
    if op == "is_set":
        return check_bool(op, value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a text value in quotes")
    return slugify(value)


def check_named_days(argument: str) -> Callable[[str, Any], dict]:
    """The check of a value {ARGUMENT: slug, "days": N} (see FieldSpec.argument)."""

    def check(op: str, value: Any) -> dict:
        if not isinstance(value, dict) or set(value) != {argument, "days"}:
            raise ValueError(f'expected {{"{argument}": slug, "days": N}}')
        return {
            argument: check_slug("eq", value[argument]),
            "days": days_value(value["days"]),
        }

    return check


# Field kinds -----------------------------------------------------------------------


def scalar_field(
    name: str,
    expression: Callable[[Context], Expression],
    *,
    kind: str,
    help: str,
    choices: tuple[str, ...] = (),
    ops: frozenset[str] | None = None,
    check_value: Callable[[str, Any], Any] | None = None,
    time_candidates: Callable[[Context, str, Any], list[Expression]] | None = None,
    refers_to: str = "",
) -> FieldSpec:
    if ops is None:
        ops = (
            (COMPARISON_OPS | {"is_set"})
            if kind in ("int", "decimal")
            else (EQUALITY_OPS | {"is_set"})
        )

    def value(ctx: Context) -> Expression:
        # Every decimal field is money, compared in cents (see Money).
        return Money(expression(ctx)) if kind == "decimal" else expression(ctx)

    return register(
        FieldSpec(
            name=name,
            kind=kind,
            ops=frozenset(ops),
            help=help,
            condition=lambda ctx, op, wanted: compare(
                value(ctx), op, _compared(kind, wanted)
            ),
            value=value,
            check_value=check_value or checker(kind, choices),
            time_candidates=time_candidates,
            choices=choices,
            refers_to=refers_to,
        )
    )


def text_column(column: str) -> Callable[[Context], Expression]:
    # Blank means unknown, and free text compares without regard to capitals.
    return lambda ctx: Lower(NullIf(F(column), Value("")))


def choice_column(column: str) -> Callable[[Context], Expression]:
    return lambda ctx: NullIf(F(column), Value(""))


def datetime_field(name: str, column: str, help: str) -> FieldSpec:
    def condition(ctx: Context, op: str, value: Any) -> Q:
        expression = F(column)
        if op == "within_days":
            return compare(expression, "gte", days_ago(ctx, value))
        if op == "before_days":
            return compare(expression, "lt", days_ago(ctx, value))
        return compare(expression, op, value)

    def candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
        if op in TIME_OPS:
            return [shifted(F(column), value)]
        return []

    return register(
        FieldSpec(
            name=name,
            kind="datetime",
            ops=TIME_OPS | {"is_set"},
            help=help,
            condition=condition,
            value=lambda ctx: F(column),
            check_value=checker("datetime"),
            time_candidates=candidates,
        )
    )


# Demographic and geographic ---------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _age_condition(ctx: Context, op: str, value: Any) -> Q:
    born = F("birth_date")

    def at_least(age: int) -> Q:
        return compare(born, "lte", _years_before(ctx.today, age))

    def below(age: int) -> Q:
        return compare(born, "gt", _years_before(ctx.today, age))

    match op:
        case "gte":
            return at_least(value)
        case "gt":
            return at_least(value + 1)
        case "lte":
            return below(value + 1)
        case "lt":
            return below(value)
        case "eq":
            return at_least(value) & below(value + 1)
        case "ne":
            return present(born) & ~(at_least(value) & below(value + 1))
        case "between":
            return at_least(value[0]) & below(value[1] + 1)
        case "in":
            return _any([at_least(age) & below(age + 1) for age in value])
        case "not_in":
            return present(born) & ~_any(
                [at_least(age) & below(age + 1) for age in value]
            )
        case "is_set":
            return compare(born, "is_set", value)
    raise RuleError("op", f"unsupported operator {op!r}")


def _any(conditions: list[Q]) -> Q:
    result = Q(pk__in=[])
    for condition in conditions:
        result |= condition
    return result


register(
    FieldSpec(
        name="age",
        kind="int",
        ops=COMPARISON_OPS | {"is_set"},
        help="Age in whole years today (from the birth date); flips on birthdays.",
        condition=_age_condition,
        check_value=checker("int"),
    )
)
scalar_field(
    "gender",
    choice_column("gender"),
    kind="choice",
    choices=tuple(c for c in Customer.Gender.values if c),
    help="f, m or x.",
)
scalar_field(
    "income_band",
    choice_column("income_band"),
    kind="choice",
    choices=tuple(c for c in Customer.IncomeBand.values if c),
    help="Income band.",
)
scalar_field(
    "family_situation",
    choice_column("family_situation"),
    kind="choice",
    choices=tuple(c for c in Customer.FamilySituation.values if c),
    help="Family situation.",
)
for _name in ("occupation", "city", "postal_code", "region", "country", "language"):
    scalar_field(
        _name,
        text_column(_name),
        kind="text",
        help=f"Customer's {_name.replace('_', ' ')}; compared ignoring capitals.",
    )
scalar_field(
    "preferred_channel",
    choice_column("preferred_channel"),
    kind="choice",
    choices=tuple(c for c in Customer.PreferredChannel.values if c),
    help="Channel the customer prefers to be reached on.",
)
scalar_field(
    "social_followers",
    lambda ctx: F("social_followers"),
    kind="int",
    help="Followers on social media.",
)
scalar_field(
    "service_effort",
    lambda ctx: F("service_effort"),
    kind="int",
    help="1-10: how much help the customer needs.",
)


def _tag_exists(ctx: Context, slug: str | None) -> Exists:
    rows = in_pass(
        Customer.tags.through.objects.filter(customer_id=OuterRef("pk")), ctx
    )
    return Exists(rows.filter(tag__slug=slug) if slug else rows)


def _list_condition(
    exists: Callable[[Context, str | None], Exists],
) -> Callable[..., Q]:
    def condition(ctx: Context, op: str, value: Any) -> Q:
        if op == "contains":
            return Q(exists(ctx, value))
        if op == "is_set":
            return Q(exists(ctx, None)) if value else ~Q(exists(ctx, None))
        raise RuleError("op", f"unsupported operator {op!r}")

    return condition


register(
    FieldSpec(
        name="tags",
        kind="list",
        ops=frozenset({"contains", "is_set"}),
        help="Interests and tags (slugs).",
        condition=_list_condition(_tag_exists),
        check_value=check_slug,
        refers_to="tag",
    )
)

# Behavioural and value ---------------------------------------------------------------

scalar_field(
    "orders", lambda ctx: F("stats__orders"), kind="int", help="Completed orders."
)
scalar_field(
    "total_spent",
    lambda ctx: F("stats__total_spent"),
    kind="decimal",
    help="Sum of completed receipts.",
)
scalar_field(
    "avg_order_value",
    lambda ctx: Case(
        When(stats__orders__gt=0, then=F("stats__avg_order_value")), default=None
    ),
    kind="decimal",
    help="Average receipt total; missing for customers who never bought.",
)
datetime_field(
    "first_purchase", "stats__first_purchase_at", "First completed purchase."
)
datetime_field("last_purchase", "stats__last_purchase_at", "Last completed purchase.")
datetime_field("last_contact", "stats__last_contact_at", "Last contact of any kind.")


def _days_since_condition(ctx: Context, op: str, value: Any) -> Q:
    # days = whole days since the last purchase, so days >= N <=> last <= now - N days.
    last = F("stats__last_purchase_at")

    def at_least(days: int) -> Q:
        return compare(last, "lte", days_ago(ctx, days))

    def below(days: int) -> Q:
        return compare(last, "gt", days_ago(ctx, days))

    match op:
        case "gte":
            return at_least(value)
        case "gt":
            return at_least(value + 1)
        case "lte":
            return below(value + 1)
        case "lt":
            return below(value)
        case "eq":
            return at_least(value) & below(value + 1)
        case "ne":
            return present(last) & ~(at_least(value) & below(value + 1))
        case "between":
            return at_least(value[0]) & below(value[1] + 1)
        case "in":
            return _any([at_least(d) & below(d + 1) for d in value])
        case "not_in":
            return present(last) & ~_any([at_least(d) & below(d + 1) for d in value])
        case "is_set":
            return compare(last, "is_set", value)
    raise RuleError("op", f"unsupported operator {op!r}")


def _days_since_candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
    values = value if isinstance(value, list) else [value]
    if op == "is_set":
        return []
    last = F("stats__last_purchase_at")
    days = sorted({d for v in values for d in (v, v + 1)})
    return [shifted(last, d) for d in days]


register(
    FieldSpec(
        name="days_since_last_purchase",
        kind="int",
        ops=COMPARISON_OPS | {"is_set"},
        help="Whole days since the last completed purchase.",
        condition=_days_since_condition,
        check_value=checker("int"),
        time_candidates=_days_since_candidates,
    )
)
scalar_field(
    "favourite_category",
    lambda ctx: F("stats__favourite_category__slug"),
    kind="slug",
    help="Category the customer spent most on (slug).",
    check_value=check_slug,
    refers_to="category",
)


def _category_exists(ctx: Context, slug: str | None) -> Exists:
    rows = in_pass(
        CustomerCategoryStats.objects.filter(customer_id=OuterRef("pk")), ctx
    )
    return Exists(rows.filter(category__slug=slug) if slug else rows)


register(
    FieldSpec(
        name="categories_bought",
        kind="list",
        ops=frozenset({"contains", "is_set"}),
        help="Categories the customer ever bought from (slugs).",
        condition=_list_condition(_category_exists),
        check_value=check_slug,
        refers_to="category",
    )
)
scalar_field(
    "purchase_channel",
    lambda ctx: NullIf(F("stats__preferred_purchase_channel"), Value("")),
    kind="choice",
    choices=("store", "online", "phone"),
    help="Channel most of the customer's purchases went through.",
)


def _bought_within_condition(ctx: Context, op: str, value: Any) -> Q:
    rows = CustomerCategoryStats.objects.filter(
        customer_id=OuterRef("pk"),
        category__slug=value["category"],
        last_purchase_at__gte=days_ago(ctx, value["days"]),
    )
    return boolean(Q(Exists(in_pass(rows, ctx))), op, True)


def _bought_within_candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
    last = CustomerCategoryStats.objects.filter(
        customer_id=OuterRef("pk"), category__slug=value["category"]
    ).values("last_purchase_at")[:1]
    return [shifted(Subquery(last, output_field=DateTimeField()), value["days"])]


register(
    FieldSpec(
        name="bought_category_within_days",
        kind="object",
        ops=frozenset({"eq"}),
        help='Bought from a category recently: {"category": slug, "days": N}.',
        condition=_bought_within_condition,
        check_value=check_named_days("category"),
        time_candidates=_bought_within_candidates,
        refers_to="category",
        argument="category",
    )
)

# Loyalty -----------------------------------------------------------------------------

_active_cards = active_cards()

register(
    FieldSpec(
        name="has_loyalty_card",
        kind="bool",
        ops=frozenset({"eq", "ne"}),
        help="Has an active loyalty card.",
        condition=lambda ctx, op, value: boolean(
            Q(Exists(in_pass(_active_cards, ctx))), op, value
        ),
        value=lambda ctx: Exists(in_pass(_active_cards, ctx)),
        check_value=check_bool,
    )
)
scalar_field(
    "loyalty_tier",
    lambda ctx: best_card_tier(),
    kind="choice",
    choices=tuple(LoyaltyCard.Tier.values),
    help="Highest tier among the customer's active cards.",
)
scalar_field(
    "loyalty_points",
    lambda ctx: card_points(),
    kind="int",
    help="Points on the customer's active cards; missing without a card.",
)

# Engagement and channel ------------------------------------------------------------


def _window_count(
    kinds: tuple[str, ...] | None, days: int
) -> Callable[[Context], Expression]:
    def expression(ctx: Context) -> Expression:
        rows = Contact.objects.filter(
            customer_id=OuterRef("pk"), occurred_at__gte=days_ago(ctx, days)
        )
        if kinds:
            rows = rows.filter(kind__in=kinds)
        counted = (
            rows.order_by().values("customer_id").annotate(n=Count("pk")).values("n")
        )
        return Coalesce(Subquery(counted[:1], output_field=IntegerField()), Value(0))

    return expression


def _window_candidates(kinds: tuple[str, ...] | None, days: int) -> Callable[..., list]:
    def candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
        rows = Contact.objects.filter(
            customer_id=OuterRef("pk"), occurred_at__gte=days_ago(ctx, days)
        )
        if kinds:
            rows = rows.filter(kind__in=kinds)
        oldest = rows.order_by().values("customer_id").annotate(m=Min("occurred_at"))
        return [
            shifted(
                Subquery(oldest.values("m")[:1], output_field=DateTimeField()), days
            )
        ]

    return candidates


for _name, _kinds, _help in (
    ("contacts_30d", None, "Contacts of any kind in the last 30 days."),
    ("email_opens_30d", ("email_open",), "Emails opened in the last 30 days."),
    ("email_clicks_30d", ("email_click",), "Email links clicked in the last 30 days."),
):
    scalar_field(
        _name,
        _window_count(_kinds, 30),
        kind="int",
        help=_help,
        time_candidates=_window_candidates(_kinds, 30),
    )


def _consent_granted(ctx: Context, channel: str) -> Exists:
    latest = Consent.objects.filter(
        customer_id=OuterRef("customer_id"), channel=channel
    )
    newest = latest.order_by("-recorded_at", "-id").values("pk")[:1]
    return Exists(
        in_pass(
            Consent.objects.filter(
                customer_id=OuterRef("pk"),
                channel=channel,
                status=Consent.Status.GRANTED,
                pk=Subquery(newest),
            ),
            ctx,
        )
    )


for _channel in ("email", "sms"):
    register(
        FieldSpec(
            name=f"{_channel}_consent",
            kind="bool",
            ops=frozenset({"eq", "ne"}),
            help=f"The latest {_channel} consent entry is a grant.",
            condition=lambda ctx, op, value, _c=_channel: boolean(
                Q(_consent_granted(ctx, _c)), op, value
            ),
            value=lambda ctx, _c=_channel: _consent_granted(ctx, _c),
            check_value=check_bool,
        )
    )

# RFM ---------------------------------------------------------------------------------


def rfm_score(ctx: Context, metric: str) -> Expression:
    """1 + the number of thresholds passed; NULL for customers who never bought."""
    thresholds = getattr(ctx.rfm, metric, None) or []
    if metric == "recency":
        last = F("stats__last_purchase_at")
        # days < t <=> last > now - ceil(t) days, for whole days since the purchase.
        parts = [
            Case(
                When(Q(GreaterThan(last, days_ago(ctx, math.ceil(t)))), then=1),
                default=0,
            )
            for t in thresholds
        ]
    else:
        column = (
            F("stats__orders")
            if metric == "frequency"
            else Money(F("stats__total_spent"))
        )
        parts = [
            Case(
                When(Q(GreaterThan(column, Value(Decimal(str(t))))), then=1), default=0
            )
            for t in thresholds
        ]
    score: Expression = Value(1)
    for part in parts:
        score = score + part
    return Case(
        When(stats__orders__gt=0, then=score), default=None, output_field=IntegerField()
    )


def _rfm_recency_candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
    thresholds = getattr(ctx.rfm, "recency", None) or []
    return [shifted(F("stats__last_purchase_at"), math.ceil(t)) for t in thresholds]


for _metric in ("recency", "frequency", "monetary"):
    scalar_field(
        f"rfm_{_metric}",
        lambda ctx, _m=_metric: rfm_score(ctx, _m),
        kind="int",
        help=f"RFM {_metric} score 1-5 (quintiles); missing without purchases.",
        time_candidates=_rfm_recency_candidates if _metric == "recency" else None,
    )


def rfm_segment_of(r: int, f: int, m: int) -> str:
    """Name of the RFM segment for scores (the first rule that applies)."""
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if r <= 2 and f >= 4 and m >= 4:
        return "cant_lose"
    if r >= 3 and f >= 4:
        return "loyal"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r >= 4 and f == 1:
        return "new"
    if r >= 3 and f >= 2:
        return "potential_loyalist"
    if r == 1:
        return "lost"
    return "hibernating"


def _rfm_segment(ctx: Context) -> Expression:
    r, f, m = (
        rfm_score(ctx, metric) for metric in ("recency", "frequency", "monetary")
    )
    # The same ordered rules as rfm_segment_of(), as one CASE.
    rules = [
        (
            "champions",
            Q(
                GreaterThanOrEqual(r, 4),
                GreaterThanOrEqual(f, 4),
                GreaterThanOrEqual(m, 4),
            ),
        ),
        (
            "cant_lose",
            Q(
                LessThanOrEqual(r, 2),
                GreaterThanOrEqual(f, 4),
                GreaterThanOrEqual(m, 4),
            ),
        ),
        ("loyal", Q(GreaterThanOrEqual(r, 3), GreaterThanOrEqual(f, 4))),
        ("at_risk", Q(LessThanOrEqual(r, 2), GreaterThanOrEqual(f, 3))),
        ("new", Q(GreaterThanOrEqual(r, 4), Exact(f, 1))),
        ("potential_loyalist", Q(GreaterThanOrEqual(r, 3), GreaterThanOrEqual(f, 2))),
        ("lost", Q(Exact(r, 1))),
    ]
    return Case(
        When(stats__orders__lte=0, then=None),
        When(stats__orders__isnull=True, then=None),
        *[When(condition, then=Value(name)) for name, condition in rules],
        default=Value("hibernating"),
    )


scalar_field(
    "rfm_segment",
    _rfm_segment,
    kind="choice",
    choices=RFM_SEGMENTS,
    help="RFM segment: " + ", ".join(RFM_SEGMENTS) + ".",
    time_candidates=_rfm_recency_candidates,
)

# Personas: the customer's persona, computed inline from the persona rules (the same
# priority CASE the engine stores) rather than read from the stored assignment, so a
# segment evaluated in the same pass as a persona change sees the new persona.


def _persona_expression(ctx: Context) -> Expression:
    from .compiler import persona_case

    return persona_case(ctx, label=lambda persona: persona.slug)


def _persona_candidates(ctx: Context, op: str, value: Any) -> list[Expression]:
    from .compiler import persona_time_candidates

    return persona_time_candidates(ctx)


scalar_field(
    "persona",
    _persona_expression,
    kind="slug",
    help=(
        "The customer's buyer persona (slug): the matching active persona with the "
        "largest priority. Computed from the persona rules in the same evaluation, "
        "so it always agrees with the persona assignment being stored."
    ),
    check_value=check_slug,
    time_candidates=_persona_candidates,
    refers_to="persona",
)

# Nesting: `segment` is compiled by the compiler itself, which inlines the rules of
# the named segments; it is registered here so that it is documented and validated.
register(
    FieldSpec(
        name="segment",
        kind="segment",
        ops=frozenset({"in", "not_in"}),
        help="Member of any of the listed segments (slugs).",
        check_value=lambda op, value: _check_slugs(value),
    )
)
