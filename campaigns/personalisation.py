"""Personalised messages: an allow-listed set of fields rendered into a template.

Marketers write a message's subject and bodies as Django templates that may use
only the fields in `FIELDS`. Templates are rendered by a dedicated engine that
loads no files and knows only a safe subset of Django's tags and filters, from a
plain dict of strings, numbers and lists built by `customer_contexts` (never a
model instance, so a template cannot walk from a customer to anything else).

A value the customer does not have renders its fallback (`FALLBACKS`): "Hi {{
first_name }}" becomes "Hi there" for a customer without a first name. The
fallback is falsy, so `{% if first_name %}` and `{{ first_name|default:"friend"
}}` still tell a missing value from a present one. `template_validate` is run
when a message is saved, so that rendering at send time does not fail.
"""

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import (
    FilterExpression,
    Lexer,
    Node,
    NodeList,
    TokenType,
    Variable,
    VariableNode,
)
from django.template.defaulttags import (
    FilterNode,
    ForNode,
    IfNode,
    TemplateLiteral,
    WithNode,
)
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Channel, Customer, LoyaltyCard
from crm.querysets import best_card_tier, card_points

from .models import Message

# What a template may use, in the order the validation message lists them.
FIELDS = (
    "first_name",
    "store",
    "points",
    "tier",
    "favourite_category",
    "recommendations",
    "unsubscribe_url",
)
# What each field is, and what it renders when the customer has no value (the
# admin shows these next to the message fields).
FIELD_HELP = {
    "first_name": gettext_lazy('The customer\'s first name; else "there".'),
    "store": gettext_lazy('The name of the customer\'s home store; else "our store".'),
    "points": gettext_lazy("Points on the customer's active loyalty cards; else 0."),
    "tier": gettext_lazy(
        'The highest tier among the customer\'s active cards; else "Basic".'
    ),
    "favourite_category": gettext_lazy(
        'The category the customer buys most from; else "our collection".'
    ),
    "recommendations": gettext_lazy(
        "Products recommended to the customer: a list, empty for now."
    ),
    "unsubscribe_url": gettext_lazy(
        "The one-click unsubscribe link (email only; added as a footer when the "
        "message does not place it)."
    ),
}


class _Missing(str):
    """A fallback text that is falsy, so templates can still test for a value."""

    def __bool__(self) -> bool:
        return False


def _fallbacks() -> dict[str, Any]:
    """What a missing value renders as (in the active language)."""
    return {
        "first_name": _Missing(_("there")),
        "store": _Missing(_("our store")),
        # Without a card a customer has no points: 0 is both true and falsy.
        "points": 0,
        "tier": _Missing(LoyaltyCard.Tier.BASIC.label),
        "favourite_category": _Missing(_("our collection")),
        "recommendations": [],
        # Only an email has one; an SMS or push message gets an empty link.
        "unsubscribe_url": _Missing(""),
    }


# Tags a message may use: no tag that loads files or libraries (include,
# extends, load), reveals internals (debug) or depends on the request (url,
# csrf_token), and no way to turn escaping off (autoescape).
TAGS = (
    "if",
    "for",
    "with",
    "firstof",
    "filter",
    "now",
    "spaceless",
    "comment",
    "verbatim",
    "templatetag",
)
# Parts of the tags above that are not tags of their own.
_TAG_PARTS = frozenset({"else", "elif", "empty"})
# Filters that would let a customer's own text (a first name) into the HTML
# unescaped, or print Python representations.
_FILTERS_REFUSED = frozenset({"safe", "safeseq", "pprint"})

register = Library()
for _name in TAGS:
    register.tag(_name, defaulttags.register.tags[_name])
for _name, _function in defaultfilters.register.filters.items():
    if _name not in _FILTERS_REFUSED:
        register.filter(_name, _function)


class _MessageEngine(Engine):
    # Only the tags and filters registered above: loader_tags (include,
    # extends, block) are not among the builtins at all.
    default_builtins = ["campaigns.personalisation"]


def _engine(*, autoescape: bool) -> Engine:
    # loaders=[]: no template file can be reached from a message. debug=True
    # annotates syntax errors with their line.
    return _MessageEngine(loaders=[], debug=True, autoescape=autoescape, libraries={})


HTML_ENGINE = _engine(autoescape=True)
TEXT_ENGINE = _engine(autoescape=False)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class MessageRenderError(ValueError):
    """A template that passed validation still failed to render (a filter raised
    on an unusual value); the delivery cannot be sent as written."""


# Validation -------------------------------------------------------------------------


def _fields_hint() -> str:
    return ", ".join(FIELDS)


def _tags_check(text: str) -> None:
    in_comment = False
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        words = token.contents.split()
        if not words:
            continue  # the parser reports an empty tag, with its line
        name = words[0]
        if in_comment:
            in_comment = name != "endcomment"
            continue
        if name == "comment":
            in_comment = True
        if name in TAGS or name in _TAG_PARTS or name.startswith("end"):
            continue
        raise ValidationError(
            _(
                "Line %(line)s: {%% %(tag)s %%} cannot be used in a message; "
                "use one of: %(tags)s."
            ),
            code="tag_not_allowed",
            params={"line": token.lineno, "tag": name, "tags": ", ".join(TAGS)},
        )


def _expression_names(expression: Any) -> list[Variable]:
    """The variables an expression of a tag or a {{ }} reads, filter arguments
    included."""
    if isinstance(expression, FilterExpression):
        found = _expression_names(expression.var)
        for _function, arguments in expression.filters:
            for is_lookup, argument in arguments:
                if is_lookup:
                    found += _expression_names(argument)
        return found
    if isinstance(expression, Variable):
        return [] if expression.literal is not None else [expression]
    if isinstance(expression, TemplateLiteral):
        return _expression_names(expression.value)
    if isinstance(expression, list | tuple):
        return [name for item in expression for name in _expression_names(item)]
    # smartif's operators: "not x", "x == y", "a in b".
    if hasattr(expression, "first"):
        return _expression_names(expression.first) + _expression_names(
            getattr(expression, "second", None)
        )
    return []


def _variables_check(nodelist: NodeList, bound: frozenset[str]) -> None:
    """Refuse a variable that is neither a field nor set by an enclosing tag."""
    bound = set(bound)
    for node in nodelist:
        reads: list[Variable] = []
        children: list[tuple[NodeList, frozenset[str]]] = []
        if isinstance(node, VariableNode):
            reads = _expression_names(node.filter_expression)
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                reads += _expression_names(condition)
                children.append((branch, frozenset(bound)))
        elif isinstance(node, ForNode):
            reads = _expression_names(node.sequence)
            children = [
                (
                    node.nodelist_loop,
                    frozenset(bound | set(node.loopvars) | {"forloop"}),
                ),
                (node.nodelist_empty, frozenset(bound)),
            ]
        elif isinstance(node, FilterNode):
            # {% filter upper %} applies "var|upper" to its own output: only the
            # filters' arguments are read from the context.
            reads = _expression_names(node.filter_expr)[1:]
            children = [(node.nodelist, frozenset(bound))]
        elif isinstance(node, WithNode):
            reads = _expression_names(list(node.extra_context.values()))
            children = [(node.nodelist, frozenset(bound | set(node.extra_context)))]
        else:
            reads = _expression_names(getattr(node, "vars", None))
            children = [
                (getattr(node, name), frozenset(bound))
                for name in node.child_nodelists
                if isinstance(getattr(node, name, None), NodeList)
            ]
        for variable in reads:
            name = variable.lookups[0]
            if name not in FIELDS and name not in bound:
                raise ValidationError(
                    _(
                        "Line %(line)s: {{ %(name)s }} is not a field you can use; "
                        "use one of: %(fields)s."
                    ),
                    code="unknown_field",
                    params={
                        "line": _node_line(node),
                        "name": variable.var,
                        "fields": _fields_hint(),
                    },
                )
        for child, names in children:
            _variables_check(child, names)
        # {% firstof a b as x %}, {% now "Y" as year %}: x is set from here on.
        if getattr(node, "asvar", None):
            bound.add(node.asvar)


def _node_line(node: Node) -> int:
    token = getattr(node, "token", None)
    return token.lineno if token is not None else 1


def _unclosed_check(text: str) -> None:
    """Django's lexer keeps a `{{` or `{%` without its closing pair as plain
    text, so the customer would read it: refuse it instead."""
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.TEXT:
            continue
        for opening, closing in (("{{", "}}"), ("{%", "%}")):
            if opening in token.contents:
                raise ValidationError(
                    _(
                        "Line %(line)s: %(opening)s is not closed; "
                        "end it with %(closing)s."
                    ),
                    code="template_unclosed",
                    params={
                        "line": token.lineno,
                        "opening": opening,
                        "closing": closing,
                    },
                )


def template_validate(text: str) -> None:
    """Raise ValidationError unless `text` is a message template that renders for
    every customer: valid syntax, allowed tags and filters, known fields only."""
    _tags_check(text)
    _unclosed_check(text)
    try:
        template = TEXT_ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        message = str(exc)
        line = getattr(exc, "template_debug", {}).get("line")
        if line:
            # One place for the line, whichever way Django worded the error.
            message = _("Line %(line)s: %(message)s") % {
                "line": line,
                "message": re.sub(r" on line \d+", "", message),
            }
        raise ValidationError(message, code="template_syntax") from None
    _variables_check(template.nodelist, frozenset())
    # A filter can still fail on a value (divisibleby:0): try the template with
    # every field present and with every field missing.
    for context in (sample_context(), {}):
        try:
            template.render(Context(_values(context), autoescape=False))
        except Exception as exc:  # whatever a filter raises is the template's fault
            raise ValidationError(
                _("The message cannot be rendered: %(error)s"),
                code="template_render",
                params={"error": exc},
            ) from None


def message_validate(*, message: Message) -> None:
    """Validate the subject and bodies of `message`; errors are keyed by field."""
    errors = {}
    for field in ("subject", "body_text", "body_html"):
        try:
            template_validate(getattr(message, field) or "")
        except ValidationError as exc:
            errors[field] = exc
    if errors:
        raise ValidationError(errors)


def sample_context() -> dict[str, Any]:
    """A made-up customer's context, for previews without a real customer."""
    return {
        "first_name": "Sarah",
        "store": "Loyalist Amsterdam",
        "points": 1250,
        "tier": str(LoyaltyCard.Tier.GOLD.label),
        "favourite_category": "Shoes",
        "recommendations": [
            {"name": "Trail shoe", "url": "https://example.com/p/1", "price": "89.00"}
        ],
        "unsubscribe_url": "https://example.com/c/u/sample/",
    }


# Contexts and rendering -------------------------------------------------------------


def customer_contexts(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The personalisation context of each customer, in one query however many.

    Erased customers are left out. Missing values are None (rendered as their
    fallback); `unsubscribe_url` is added per delivery by the email builder.
    """
    rows = (
        Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True)
        .annotate(card_tier=best_card_tier(), card_points=card_points())
        .values(
            "pk",
            "first_name",
            "home_store__name",
            "stats__favourite_category__name",
            "card_tier",
            "card_points",
        )
    )
    return {
        row["pk"]: {
            "first_name": row["first_name"] or None,
            "store": row["home_store__name"],
            "points": row["card_points"],
            "tier": (
                str(LoyaltyCard.Tier(row["card_tier"]).label)
                if row["card_tier"]
                else None
            ),
            "favourite_category": row["stats__favourite_category__name"],
            # Filled by the recommendations issue.
            "recommendations": [],
        }
        for row in rows
    }


def _plain(value: Any) -> Any:
    """Strings, numbers, and lists and dicts of them; anything else as text, so no
    object with methods or relations reaches a template."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


def _values(context: dict[str, Any]) -> dict[str, Any]:
    """The allow-listed fields of `context`, with fallbacks for missing ones."""
    values = _fallbacks()
    for name in FIELDS:
        value = _plain(context.get(name))
        if name == "points":
            try:
                value = int(value)
            except (TypeError, ValueError):
                continue
        elif name == "recommendations":
            if not isinstance(value, list):
                continue
        elif value in (None, ""):
            continue
        else:
            value = str(value)
        values[name] = value
    return values


@lru_cache(maxsize=512)
def _template(autoescape: bool, text: str) -> Template:
    # A batch renders the same few texts hundreds of times; a compiled Django
    # template is safe to render again and from several threads.
    return (HTML_ENGINE if autoescape else TEXT_ENGINE).from_string(text)


def _render(engine: Engine, text: str, values: dict[str, Any]) -> str:
    if not text:
        return ""
    try:
        # The Context, not the Engine, decides whether variables are escaped.
        return _template(engine.autoescape, text).render(
            Context(values, autoescape=engine.autoescape)
        )
    except Exception as exc:
        raise MessageRenderError(str(exc)) from exc


def message_render(*, message: Message, context: dict[str, Any]) -> Rendered:
    """Render `message` for one customer's `context` (from customer_contexts, plus
    `unsubscribe_url` for email).

    The subject is one line. Only email has an HTML part; text and subject are
    not HTML-escaped. Raises MessageRenderError only for a template that never
    passed template_validate.
    """
    values = _values(context)
    subject = " ".join(_render(TEXT_ENGINE, message.subject, values).split())
    text = _render(TEXT_ENGINE, message.body_text, values)
    body_html = (
        _render(HTML_ENGINE, message.body_html, values)
        if message.channel == Channel.EMAIL
        else ""
    )
    return Rendered(subject=subject, text=text, html=body_html)


# Link rewriting (email HTML) ---------------------------------------------------------

_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


def html_links_rewrite(body_html: str, rewrite) -> str:
    """Replace each http(s) link target in `body_html` by `rewrite(url)`.

    The attribute holds the escaped URL (&amp;); `rewrite` gets the real one and
    its result is escaped again.
    """

    def replace(match: re.Match) -> str:
        url = html.unescape(match.group(3))
        new = rewrite(url)
        return f"{match.group(1)}{match.group(2)}{html.escape(new)}{match.group(2)}"

    return _HREF.sub(replace, body_html)
