"""Fill a database with two years of believable shop data, fast enough for 100,000
customers.

Two passes, both writing through `BulkWriter` (COPY on PostgreSQL):

1. Customers one by one: profile, consents, tags, loyalty card, the contacts that are
   not purchases, and the moments they will buy, each packed into one integer.
2. Those purchases in time order: receipts, lines, the purchase contact and the
   points earned. Receipt ids and numbers therefore rise with time, per store, as
   they do at a real till.

Card balances and customer statistics are then computed from what was written, with
set-based SQL (`customer_stats_rebuild` for the statistics), never in Python.
"""

import random
from bisect import bisect
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from itertools import accumulate
from math import exp, inf, sqrt
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from stdnum import luhn

from crm import hooks
from crm.models import (
    Category,
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    CustomerStats,
    LoyaltyCard,
    LoyaltyTransaction,
    Product,
    Receipt,
    ReceiptLine,
    StaffMember,
    Store,
    Tag,
)
from crm.services.loyalty import CARD_LENGTH, CARD_PREFIX
from crm.services.stats import customer_stats_rebuild

from .bulk import BulkWriter, indexes_and_foreign_keys_suspended
from .catalogue import (
    CATEGORIES,
    CONSENT_WORDING,
    FIRST_NAMES,
    LAST_NAMES,
    STORES,
    TAGS,
    TIME_ZONE,
    WITHDRAWAL_WORDING,
    ZONE,
    products_build,
)
from .clock import DAYS, Clock
from .shoppers import PROFILES, Profile, shopper_types
from .users import DemoLogin, demo_users_ensure

DAY = 86_400
MONTH = 30.44 * DAY
# A planned purchase is one int, so that a million of them sort fast:
# (((epoch << 2 | channel) << 4 | store) << 24) | customer index.
CUSTOMER_BITS = 24
STORE_BITS = 4
CHANNEL_BITS = 2
MAX_CUSTOMERS = 2**CUSTOMER_BITS - 1
SALES_CHANNELS = ("store", "online", "phone")
PAYMENTS = {
    "store": {"card": 65, "mobile": 22, "cash": 9, "gift_card": 4},
    "online": {"online": 93, "gift_card": 7},
    "phone": {"card": 100},
}
CONTACT_CHANNELS = {
    "email_open": "email",
    "email_click": "email",
    "survey_response": "email",
    "sms_click": "sms",
    "web_visit": "online",
    "cart_abandoned": "online",
    "wishlist_add": "online",
    "review": "online",
    "social_mention": "social",
    "card_scan": "store",
    "support_ticket": "phone",
}
# (lifetime points, tier), highest first.
TIERS = ((5000, "platinum"), (1500, "gold"), (500, "silver"))
POSTAL_LETTERS = "ABCEGHJKLMNPRTVWXZ"
# Share of store purchases where the card stayed at home.
CARD_FORGOTTEN = 0.08

ProgressFactory = Callable[[str, int], AbstractContextManager[Any]]


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    receipts: int
    receipt_lines: int
    contacts: int
    loyalty_cards: int
    loyalty_transactions: int
    consents: int
    logins: list[DemoLogin]


class _NoBar:
    def update(self, _count: int) -> None:
        pass


def _no_progress(_description: str, _total: int) -> AbstractContextManager[Any]:
    return nullcontext(_NoBar())


def _pick(rng: random.Random, weights: dict) -> Callable[[], Any]:
    """A function drawing a key of `weights` in proportion to its weight."""
    keys = list(weights)
    cumulative = list(accumulate(weights.values()))
    total = cumulative[-1]
    # random() * total can round up to total itself.
    cumulative[-1] = inf
    random_ = rng.random

    def pick() -> Any:
        return keys[bisect(cumulative, random_() * total)]

    return pick


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, sqrt(mean))))
    limit, count, product = exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass
class _Shopping:
    """A shopper type's profile turned into what the generator's loops need."""

    profile: Profile
    product_ids: list[int]
    product_prices: list[int]
    product_price_texts: list[str]
    product_cumulative: list[float]
    product_weight: float
    day_weights: list[float]
    day_weight_max: float
    sales_channel: Callable[[], str]
    payments: dict[str, Callable[[], str]]
    payloads: dict[str, Callable[[str], str]]


class _Generator:
    def __init__(
        self,
        *,
        seed: int,
        customers: int,
        until: datetime,
        writer: BulkWriter,
        progress: ProgressFactory,
    ):
        self.seed = seed
        self.count = customers
        self.clock = Clock(until)
        self.writer = writer
        self.progress = progress
        self.rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        self.customers = writer.table(
            Customer,
            "id, email, phone, first_name, last_name, birth_date, gender, address, "
            "postal_code, city, region, country, income_band, occupation, "
            "family_situation, preferred_channel, language, social_followers, "
            "service_effort, home_store_id, source, created_at, updated_at",
        )
        self.customer_tags = writer.table(
            Customer.tags.through, "id, customer_id, tag_id"
        )
        self.consents = writer.table(
            Consent,
            "id, customer_id, channel, status, recorded_at, source, wording, "
            "recorded_by_id",
        )
        self.cards = writer.table(
            LoyaltyCard,
            "id, number, customer_id, tier, status, points, issued_at, "
            "issuing_store_id",
        )
        self.receipts = writer.table(
            Receipt,
            "id, number, store_id, clerk_id, customer_id, loyalty_card_id, channel, "
            "purchased_at, total, currency, payment_method, points_earned, "
            "points_redeemed, redeemed_value, status, idempotency_key, email_status, "
            "emailed_at, voided_at, void_reason, created_at",
        )
        self.lines = writer.table(
            ReceiptLine,
            "id, receipt_id, product_id, quantity, unit_price, discount, line_total",
        )
        self.contacts = writer.table(
            Contact,
            "id, customer_id, kind, channel, occurred_at, store_id, receipt_id, "
            "payload, created_at",
        )
        self.ledger = writer.table(
            LoyaltyTransaction,
            "id, card_id, kind, points, receipt_id, note, created_at",
        )

    # -- reference data --------------------------------------------------------

    def reference_data_ensure(self) -> None:
        """Stores, categories, products and tags, reusing those that exist."""
        self.stores: list[Store] = []
        for demo in STORES:
            store, _created = Store.objects.get_or_create(
                code=demo.code,
                defaults={
                    "name": demo.name,
                    "address": demo.address,
                    "city": demo.town.name,
                    "postal_code": demo.postal_code,
                    "phone": demo.phone,
                    "email": f"{demo.code}@loyalist.example",
                    "time_zone": TIME_ZONE,
                    "created_at": datetime.fromtimestamp(
                        self.clock.start - 5 * 365 * DAY, tz=ZONE
                    ),
                },
            )
            self.stores.append(store)
        categories = {}
        for category in CATEGORIES:
            categories[category.slug], _created = Category.objects.get_or_create(
                slug=category.slug, defaults={"name": category.name}
            )
        catalogue = products_build(random.Random(f"catalogue/{self.seed}"))  # noqa: S311
        skus = [product.sku for product in catalogue]
        existing = set(
            Product.objects.filter(sku__in=skus).values_list("sku", flat=True)
        )
        Product.objects.bulk_create(
            [
                Product(
                    sku=product.sku,
                    barcode=product.barcode,
                    name=product.name,
                    category=categories[product.category],
                    price=_money(product.price_cents),
                    cost=_money(product.cost_cents),
                    stock_level=product.stock_level,
                )
                for product in catalogue
                if product.sku not in existing
            ]
        )
        # The database's prices win over the generated ones, so that receipts agree
        # with a catalogue that was there before.
        self.products = [
            (product_id, int(price * 100), category)
            for product_id, price, category in Product.objects.filter(sku__in=skus)
            .order_by("sku")
            .values_list("pk", "price", "category__slug")
        ]
        Tag.objects.bulk_create(
            [Tag(slug=slug, name=name) for slug, name in TAGS], ignore_conflicts=True
        )
        self.tag_ids = dict(
            Tag.objects.filter(slug__in=[slug for slug, _ in TAGS]).values_list(
                "slug", "pk"
            )
        )
        self.shopping = [self._shopping_prepare(p) for p in PROFILES.values()]

    def _shopping_prepare(self, profile: Profile) -> _Shopping:
        ids, prices, weights = [], [], []
        for product_id, price, category in self.products:
            weight = profile.categories.get(category, 0)
            if weight:
                ids.append(product_id)
                prices.append(price)
                weights.append(weight * (price / 5000) ** profile.price_taste)
        cumulative = list(accumulate(weights))
        total = cumulative[-1]
        cumulative[-1] = inf
        day_weights = self.clock.day_weights(
            seasonal=profile.seasonal, gift_season=profile.gift_season
        )
        random_ = self.rng.random
        paths = [f'{{"path": "/{slug}/"}}' for slug in profile.categories]

        def path(_when: str) -> str:
            return paths[int(random_() * len(paths))]

        def campaign(when: str) -> str:
            return f'{{"campaign": "newsletter-{when[:7]}"}}'

        def sms_campaign(when: str) -> str:
            return f'{{"campaign": "sms-{when[:7]}"}}'

        def cart(_when: str) -> str:
            return f'{{"items": {1 + int(random_() * 4)}}}'

        payloads = dict.fromkeys(CONTACT_CHANNELS, lambda _when: "{}")
        payloads.update(
            email_open=campaign,
            email_click=campaign,
            survey_response=campaign,
            sms_click=sms_campaign,
            web_visit=path,
            wishlist_add=path,
            review=path,
            cart_abandoned=cart,
        )
        return _Shopping(
            profile=profile,
            product_ids=ids,
            product_prices=prices,
            product_price_texts=[_money(price) for price in prices],
            product_cumulative=cumulative,
            product_weight=total,
            day_weights=day_weights,
            day_weight_max=max(day_weights),
            sales_channel=_pick(self.rng, profile.sales_channels),
            payments={
                channel: _pick(self.rng, weights)
                for channel, weights in PAYMENTS.items()
            },
            payloads=payloads,
        )

    # -- pass 1: customers -----------------------------------------------------

    def customers_generate(self) -> list[int]:
        """Write the customers and everything but their purchases; return the
        purchases planned, packed."""
        rng = self.rng
        random_ = rng.random
        writer = self.writer
        kinds = list(PROFILES)
        self.kind_of = [
            kinds.index(kind)
            for kind in shopper_types(seed=self.seed, customers=self.count)
        ]
        self.card_of = [0] * self.count
        self.customer_first = writer.id_next(Customer)
        self.card_first = writer.id_next(LoyaltyCard)
        self.next_tag = writer.id_next(Customer.tags.through)
        self.next_consent = writer.id_next(Consent)
        self.next_contact = writer.id_next(Contact)
        next_card = self.card_first
        card_digits = CARD_LENGTH - len(CARD_PREFIX) - 1
        card_space = 10**card_digits
        card_offset = (self.seed * 7_919) % card_space
        store_pick = _pick(rng, {index: s.weight for index, s in enumerate(STORES)})
        pickers = [
            {
                "gender": _pick(rng, p.genders),
                "income": _pick(rng, p.incomes),
                "family": _pick(rng, p.families),
                "preferred": _pick(rng, p.preferred_channels),
                "source": _pick(rng, p.signup_sources),
            }
            for p in PROFILES.values()
        ]
        purchases: list[int] = []
        with self.progress("customers", self.count) as bar:
            for index in range(self.count):
                kind = self.kind_of[index]
                shopping = self.shopping[kind]
                profile = shopping.profile
                pick = pickers[kind]
                customer_id = self.customer_first + index
                store_index = store_pick()
                source = pick["source"]()
                joined, first_day, last_day = self._membership(profile)
                self._customer_add(
                    index, customer_id, profile, pick, store_index, source, joined
                )
                card_id = 0
                if random_() < profile.card_share:
                    card_id = next_card
                    next_card += 1
                    # An affine map modulo 10**digits: distinct customers get
                    # distinct numbers that do not look consecutive.
                    serial = (index * 48_271 + card_offset) % card_space
                    body = f"{CARD_PREFIX}{serial:0{card_digits}d}"
                    self.cards.rows.append(
                        (
                            card_id,
                            body + luhn.calc_check_digit(body),
                            customer_id,
                            "basic",
                            "active",
                            0,
                            self.clock.text(joined),
                            self.stores[store_index].pk,
                        )
                    )
                    self.card_of[index] = card_id
                moments = self._purchases_plan(
                    shopping, index, store_index, joined, first_day, last_day, source
                )
                purchases.extend(moments)
                self._contacts_add(
                    shopping,
                    customer_id,
                    store_index,
                    card_id,
                    source,
                    joined,
                    first_day,
                    last_day,
                    moments,
                )
                if index % 1000 == 999:
                    bar.update(1000)
                    writer.flush(full_only=True)
            bar.update(self.count % 1000)
        return purchases

    def _membership(self, profile: Profile) -> tuple[int, int, int]:
        """When the customer signed up, and the first and the last day (exclusive)
        they shop."""
        rng = self.rng
        clock = self.clock
        last_day = rng.randint(300, 365) if profile.lapses else DAYS
        signed_up = rng.randint(9 * 3600, 20 * 3600)
        if rng.random() < (0.7 if profile.lapses else 0.45):
            # A customer from before the period.
            joined = clock.start - rng.randint(1, 4 * 365) * DAY + signed_up
            return joined, 0, last_day
        first_day = rng.randint(0, 120 if profile.lapses else DAYS - 30)
        return clock.midnights[first_day] + signed_up, first_day, last_day

    def _customer_add(
        self,
        index: int,
        customer_id: int,
        profile: Profile,
        pick: dict[str, Callable[[], str]],
        store_index: int,
        source: str,
        joined: int,
    ) -> None:
        rng = self.rng
        store = STORES[store_index]
        gender = pick["gender"]()
        first_name = rng.choice(FIRST_NAMES[gender])
        last_name = rng.choice(LAST_NAMES)
        town = store.town if rng.random() < 0.85 else rng.choice(store.nearby)
        low, high = profile.ages
        age_days = rng.randint(low * 365, high * 365 + 364) + (low + high) // 8
        email_name = f"{first_name}.{last_name}".lower().replace(" ", "")
        joined_text = self.clock.text(joined)
        self.customers.rows.append(
            (
                customer_id,
                f"{email_name}.{index}@example.com",
                f"+316{rng.randint(10_000_000, 99_999_999)}"
                if rng.random() < 0.85
                else "",
                first_name,
                last_name,
                date.fromordinal(self.clock.today.toordinal() - age_days).isoformat(),
                gender,
                f"{rng.choice(town.streets)} {rng.randint(1, 240)}",
                f"{rng.randint(*town.postal_codes)} "
                f"{rng.choice(POSTAL_LETTERS)}{rng.choice(POSTAL_LETTERS)}",
                town.name,
                town.region,
                "NL",
                pick["income"](),
                rng.choice(profile.occupations),
                pick["family"](),
                pick["preferred"](),
                "en" if rng.random() < profile.english_share else "nl",
                int(rng.lognormvariate(*profile.followers)),
                rng.randint(*profile.service_effort),
                self.stores[store_index].pk,
                source,
                joined_text,
                joined_text,
            )
        )
        tags = list(profile.fixed_tags) + [
            slug for slug, share in profile.interests.items() if rng.random() < share
        ]
        for slug in tags:
            self.customer_tags.rows.append(
                (self.next_tag, customer_id, self.tag_ids[slug])
            )
            self.next_tag += 1

    def _purchases_plan(
        self,
        shopping: _Shopping,
        index: int,
        store_index: int,
        joined: int,
        first_day: int,
        last_day: int,
        source: str,
    ) -> list[int]:
        rng = self.rng
        random_ = rng.random
        expovariate = rng.expovariate
        triangular = rng.triangular
        profile = shopping.profile
        weights = shopping.day_weights
        top = shopping.day_weight_max
        # Purchases are a Poisson process over days, thinned by the day's weight.
        rate = profile.purchases_per_month / (MONTH / DAY) * top
        midnights = self.clock.midnights
        moments = []
        if first_day > 0 and random_() < 0.6:
            # Most people sign up at the till or in the web shop while buying.
            channel = source if source in profile.sales_channels else "online"
            moments.append(_packed(joined + 300, channel, store_index, index))
        day = first_day + 1 + expovariate(rate)
        while day < last_day:
            whole = int(day)
            if random_() * top < weights[whole]:
                channel = shopping.sales_channel()
                where = store_index
                if channel == "store":
                    seconds = int(triangular(9.5 * 3600, 21 * 3600, 15 * 3600))
                    if random_() < 0.1:
                        where = int(random_() * len(STORES))
                elif channel == "online":
                    seconds = int(triangular(6 * 3600, DAY - 1, 21 * 3600))
                else:
                    seconds = 9 * 3600 + int(random_() * 8 * 3600)
                moments.append(
                    _packed(midnights[whole] + seconds, channel, where, index)
                )
            day += expovariate(rate)
        return moments

    def _contacts_add(
        self,
        shopping: _Shopping,
        customer_id: int,
        store_index: int,
        card_id: int,
        source: str,
        joined: int,
        first_day: int,
        last_day: int,
        moments: list[int],
    ) -> None:
        """Consents, and the contacts other than purchases that go with them."""
        rng = self.rng
        random_ = rng.random
        text = self.clock.text
        profile = shopping.profile
        start = max(joined, self.clock.midnights[first_day])
        end = self.clock.end
        if profile.lapses:
            # The last mails are opened a few months after the last purchase.
            end = self.clock.midnights[last_day - 1] + rng.randint(0, 120) * DAY
        consent_rows = self.consents.rows
        joined_text = text(joined)
        granted = set()
        for channel, share in profile.consents.items():
            if random_() < share:
                granted.add(channel)
                consent_rows.append(
                    (
                        self.next_consent,
                        customer_id,
                        channel,
                        "granted",
                        joined_text,
                        "online" if source == "online" else "store",
                        CONSENT_WORDING[channel],
                        None,
                    )
                )
                self.next_consent += 1
        contact_rows = self.contacts.rows
        next_contact = self.next_contact
        email_end = end
        if "email" in granted and random_() < (0.4 if profile.lapses else 0.03):
            email_end = int(start + (end - start) * (0.5 + random_() / 2))
            when = text(email_end)
            consent_rows.append(
                (
                    self.next_consent,
                    customer_id,
                    "email",
                    "withdrawn",
                    when,
                    "email_link",
                    WITHDRAWAL_WORDING,
                    None,
                )
            )
            self.next_consent += 1
            contact_rows.append(
                (
                    next_contact,
                    customer_id,
                    "unsubscribe",
                    "email",
                    when,
                    None,
                    None,
                    "{}",
                    when,
                )
            )
            next_contact += 1

        home_store_id = self.stores[store_index].pk
        for kind, per_month in profile.contacts.items():
            channel = CONTACT_CHANNELS[kind]
            if (channel in ("email", "sms") and channel not in granted) or (
                kind == "card_scan" and not card_id
            ):
                continue
            span = (email_end if channel == "email" else end) - start
            if span <= 0:
                continue
            store_id = home_store_id if channel == "store" else None
            payload = shopping.payloads[kind]
            for _ in range(_poisson(rng, per_month * span / MONTH)):
                when = text(start + int(random_() * span))
                by = channel
                if kind == "support_ticket" and random_() < 0.4:
                    by = "email"
                contact_rows.append(
                    (
                        next_contact,
                        customer_id,
                        kind,
                        by,
                        when,
                        store_id,
                        None,
                        payload(when),
                        when,
                    )
                )
                next_contact += 1

        # Research online before buying: browsing, and a click in the newsletter.
        low, high = profile.research
        if high:
            visit = shopping.payloads["web_visit"]
            for moment in moments:
                bought = moment >> (CUSTOMER_BITS + STORE_BITS + CHANNEL_BITS)
                for _ in range(low + int(random_() * (high - low + 1))):
                    epoch = bought - int(random_() * 14 * DAY)
                    if epoch > joined:
                        when = text(epoch)
                        contact_rows.append(
                            (
                                next_contact,
                                customer_id,
                                "web_visit",
                                "online",
                                when,
                                None,
                                None,
                                visit(when),
                                when,
                            )
                        )
                        next_contact += 1
                epoch = bought - int(random_() * 7 * DAY)
                if (
                    "email" in granted
                    and joined < epoch < email_end
                    and random_() < 0.5
                ):
                    when = text(epoch)
                    contact_rows.append(
                        (
                            next_contact,
                            customer_id,
                            "email_click",
                            "email",
                            when,
                            None,
                            None,
                            shopping.payloads["email_click"](when),
                            when,
                        )
                    )
                    next_contact += 1
        self.next_contact = next_contact

    # -- pass 2: purchases -----------------------------------------------------

    def receipts_generate(self, purchases: list[int]) -> None:
        """Write a receipt with lines, a purchase contact and the points earned for
        every planned purchase, oldest first."""
        random_ = self.rng.random
        text = self.clock.text
        purchases.sort()
        store_ids = [store.pk for store in self.stores]
        clerk_of = dict(
            StaffMember.objects.filter(store__in=self.stores).values_list(
                "store_id", "user_id"
            )
        )
        clerks = [clerk_of.get(store_id) for store_id in store_ids]
        prefixes = [store.code.upper() for store in self.stores]
        sequences = [store.receipt_sequence for store in self.stores]
        next_receipt = self.writer.id_next(Receipt)
        next_line = self.writer.id_next(ReceiptLine)
        next_entry = self.writer.id_next(LoyaltyTransaction)
        next_contact = self.next_contact
        receipt_rows = self.receipts.rows
        line_rows = self.lines.rows
        contact_rows = self.contacts.rows
        ledger_rows = self.ledger.rows
        customer_mask = (1 << CUSTOMER_BITS) - 1
        store_mask = (1 << STORE_BITS) - 1
        channel_mask = (1 << CHANNEL_BITS) - 1
        currency = settings.LOYALIST_CURRENCY
        # As points_for_amount does it: whole points, rounded down.
        points_per_unit = settings.LOYALIST_POINTS_PER_CURRENCY_UNIT
        shopping_of = [self.shopping[kind] for kind in self.kind_of]
        card_of = self.card_of
        customer_first = self.customer_first
        with self.progress("receipts", len(purchases)) as bar:
            for done, packed in enumerate(purchases, start=1):
                index = packed & customer_mask
                packed >>= CUSTOMER_BITS
                store_index = packed & store_mask
                packed >>= STORE_BITS
                channel = SALES_CHANNELS[packed & channel_mask]
                when = text(packed >> CHANNEL_BITS)
                shopping = shopping_of[index]
                profile = shopping.profile
                receipt_id = next_receipt
                next_receipt += 1
                sequences[store_index] += 1

                ids = shopping.product_ids
                prices = shopping.product_prices
                price_texts = shopping.product_price_texts
                cumulative = shopping.product_cumulative
                weight = shopping.product_weight
                lines_low, lines_high = profile.lines
                quantity_low, quantity_high = profile.quantities
                chance, least, most = profile.discount
                total = 0
                for _ in range(
                    lines_low + int(random_() * (lines_high - lines_low + 1))
                ):
                    position = bisect(cumulative, random_() * weight)
                    quantity = quantity_low + int(
                        random_() * (quantity_high - quantity_low + 1)
                    )
                    gross = prices[position] * quantity
                    if random_() < chance:
                        discount = int(gross * (least + (most - least) * random_()))
                        discount_text = _money(discount)
                    else:
                        discount, discount_text = 0, "0.00"
                    line_total = gross - discount
                    total += line_total
                    line_rows.append(
                        (
                            next_line,
                            receipt_id,
                            ids[position],
                            quantity,
                            price_texts[position],
                            discount_text,
                            price_texts[position]
                            if line_total == prices[position]
                            else _money(line_total),
                        )
                    )
                    next_line += 1

                card_id = card_of[index]
                if card_id and channel == "store" and random_() < CARD_FORGOTTEN:
                    card_id = 0
                points = total * points_per_unit // 100 if card_id else 0
                customer_id = customer_first + index
                receipt_rows.append(
                    (
                        receipt_id,
                        f"{prefixes[store_index]}-{sequences[store_index]:07d}",
                        store_ids[store_index],
                        None if channel == "online" else clerks[store_index],
                        customer_id,
                        card_id or None,
                        channel,
                        when,
                        _money(total),
                        currency,
                        "invoice" if profile.invoice else shopping.payments[channel](),
                        points,
                        0,
                        "0.00",
                        "completed",
                        None,
                        "",
                        None,
                        None,
                        "",
                        when,
                    )
                )
                contact_rows.append(
                    (
                        next_contact,
                        customer_id,
                        "purchase",
                        channel,
                        when,
                        store_ids[store_index],
                        receipt_id,
                        "{}",
                        when,
                    )
                )
                next_contact += 1
                if points:
                    ledger_rows.append(
                        (next_entry, card_id, "earned", points, receipt_id, "", when)
                    )
                    next_entry += 1
                if done % 10_000 == 0:
                    bar.update(10_000)
                    self.writer.flush(full_only=True)
            bar.update(len(purchases) % 10_000)
        self.next_contact = next_contact
        for store, sequence in zip(self.stores, sequences, strict=True):
            if sequence != store.receipt_sequence:
                # Receipts from the tills continue after the seeded numbers.
                Store.objects.filter(pk=store.pk).update(receipt_sequence=sequence)


def _packed(epoch: int, channel: str, store_index: int, index: int) -> int:
    packed = (epoch << CHANNEL_BITS) | SALES_CHANNELS.index(channel)
    return (((packed << STORE_BITS) | store_index) << CUSTOMER_BITS) | index


def _card_balances_set(first_id: int) -> None:
    """Set the points of the cards from `first_id` on to their ledger sum, and their
    tier from the points, in one statement."""
    cards = LoyaltyCard._meta.db_table
    ledger = LoyaltyTransaction._meta.db_table
    tier = " ".join(f"WHEN s.points >= {floor} THEN '{name}'" for floor, name in TIERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {cards}
            SET points = s.points, tier = CASE {tier} ELSE 'basic' END
            FROM (
                SELECT card_id, SUM(points) AS points FROM {ledger}
                WHERE card_id >= %s GROUP BY card_id
            ) s
            WHERE {cards}.id = s.card_id
            """,  # noqa: S608
            [first_id],
        )


@transaction.atomic
def demo_seed(
    *,
    customers: int,
    seed: int,
    until: datetime | None = None,
    progress: ProgressFactory | None = None,
) -> DemoSummary:
    """Add the demo stores, catalogue, staff accounts and `customers` shoppers with
    two years of history, ending the day before `until` (default: now) in the shops'
    time zone.

    The same seed, number of customers and day give the same data. Meant for a
    database without customers, which the caller checks; `progress(stage, total)`
    returns a context manager whose `update(n)` is called as the work advances.
    """
    if not 0 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 0 and {MAX_CUSTOMERS}.")
    writer = BulkWriter()
    generator = _Generator(
        seed=seed,
        customers=customers,
        until=until or timezone.now(),
        writer=writer,
        progress=progress or _no_progress,
    )
    generator.reference_data_ensure()
    logins = demo_users_ensure()
    with writer.loading():
        purchases = generator.customers_generate()
        generator.receipts_generate(purchases)
    writer.sequences_reset()
    _card_balances_set(generator.card_first)
    with (
        indexes_and_foreign_keys_suspended(
            [CustomerStats._meta.db_table, CustomerCategoryStats._meta.db_table]
        ),
        generator.progress("statistics", Customer.objects.count()) as bar,
    ):
        customer_stats_rebuild(progress=bar.update)
    hooks.demo_seeded.send()
    return DemoSummary(
        customers=generator.customers.written,
        receipts=generator.receipts.written,
        receipt_lines=generator.lines.written,
        contacts=generator.contacts.written,
        loyalty_cards=generator.cards.written,
        loyalty_transactions=generator.ledger.written,
        consents=generator.consents.written,
        logins=logins,
    )
