"""Shopper types: who the demo customers are and how each kind of customer shops.

Each type is a profile of plain numbers (ages, incomes, purchase rates, basket sizes,
channels, the contacts they leave), so that the generator in `crm.demo.seed` stays
one loop and a reader can compare the types side by side.
"""

import random
import re
from dataclasses import dataclass, field
from enum import StrEnum


class ShopperType(StrEnum):
    # "Joe": researches online, buys a few big baskets a year in store.
    OCCASION = "occasion"
    # "Sarah": buys small and often online, lives on her phone.
    YOUNG_ONLINE = "young_online"
    # Parents of young children: a mid-size basket in store every month or so.
    FAMILY = "family"
    # Buys for a company: large orders by phone or online, paid by invoice.
    BUSINESS = "business"
    # Bought during the first year of the period only, then went quiet.
    LAPSED = "lapsed"
    # Comes for the sales and the discount codes.
    BARGAIN = "bargain"


@dataclass(frozen=True)
class Profile:
    share: int
    ages: tuple[int, int]
    genders: dict[str, int]
    incomes: dict[str, int]
    occupations: tuple[str, ...]
    families: dict[str, int]
    preferred_channels: dict[str, int]
    # Social followers are log-normal: (mu, sigma) of the logarithm.
    followers: tuple[float, float]
    service_effort: tuple[int, int]
    signup_sources: dict[str, int]
    english_share: float
    card_share: float
    # Probability that each channel's consent was granted at sign-up.
    consents: dict[str, float]
    purchases_per_month: float
    sales_channels: dict[str, int]
    lines: tuple[int, int]
    quantities: tuple[int, int]
    categories: dict[str, int]
    # Product weight multiplied by price ** price_taste: above 0 favours dear items.
    price_taste: float
    # Probability that a line is discounted, and the range of the discount.
    discount: tuple[float, float, float]
    invoice: bool = False
    # Purchases cluster in the January, July and Black Friday sales.
    seasonal: bool = False
    # Twice as many purchases in December, for presents.
    gift_season: bool = False
    # Purchases only during the first year of the period.
    lapses: bool = False
    # Web visits in the fortnight before each purchase.
    research: tuple[int, int] = (0, 0)
    # Contacts other than purchases, per month of activity.
    contacts: dict[str, float] = field(default_factory=dict)
    fixed_tags: tuple[str, ...] = ()
    interests: dict[str, float] = field(default_factory=dict)


PROFILES: dict[ShopperType, Profile] = {
    ShopperType.OCCASION: Profile(
        share=18,
        ages=(30, 50),
        genders={"m": 55, "f": 43, "x": 2},
        incomes={"high": 55, "upper_middle": 40, "middle": 5},
        occupations=(
            "Lawyer",
            "Consultant",
            "Software engineer",
            "Doctor",
            "Architect",
            "Project manager",
            "Financial adviser",
            "Marketing director",
            "",
        ),
        families={"couple": 40, "older_children": 25, "single": 25, "empty_nest": 10},
        preferred_channels={"email": 85, "": 15},
        followers=(4.5, 1.0),
        service_effort=(3, 7),
        signup_sources={"store": 85, "online": 15},
        english_share=0.2,
        card_share=0.85,
        consents={"email": 0.95, "sms": 0.15, "social_ads": 0.3},
        purchases_per_month=0.33,
        sales_channels={"store": 90, "online": 10},
        lines=(2, 5),
        quantities=(1, 1),
        categories={
            "shoes": 30,
            "clothing": 30,
            "bags": 20,
            "accessories": 15,
            "home": 5,
        },
        price_taste=1.0,
        discount=(0.05, 0.1, 0.2),
        gift_season=True,
        research=(1, 4),
        contacts={
            "email_open": 0.6,
            "email_click": 0.2,
            "web_visit": 0.15,
            "wishlist_add": 0.05,
            "review": 0.02,
        },
        interests={"fashion": 0.4, "gift-ideas": 0.35, "sneakers": 0.1},
    ),
    ShopperType.YOUNG_ONLINE: Profile(
        share=22,
        ages=(18, 25),
        genders={"f": 68, "m": 27, "x": 5},
        incomes={"low": 60, "lower_middle": 35, "": 5},
        occupations=(
            "Student",
            "Student",
            "Barista",
            "Sales assistant",
            "Intern",
            "Content creator",
            "",
        ),
        families={"single": 85, "couple": 15},
        preferred_channels={"sms": 45, "social": 45, "push": 10},
        followers=(7.8, 1.1),
        service_effort=(1, 3),
        signup_sources={"online": 85, "store": 15},
        english_share=0.25,
        card_share=0.75,
        consents={"email": 0.9, "sms": 0.85, "social_ads": 0.8},
        purchases_per_month=1.0,
        sales_channels={"online": 85, "store": 15},
        lines=(1, 2),
        quantities=(1, 1),
        categories={"accessories": 35, "beauty": 30, "clothing": 25, "shoes": 10},
        price_taste=-0.8,
        discount=(0.2, 0.1, 0.2),
        contacts={
            "email_open": 0.6,
            "email_click": 0.1,
            "sms_click": 0.3,
            "web_visit": 0.5,
            "cart_abandoned": 0.2,
            "wishlist_add": 0.12,
            "social_mention": 0.06,
        },
        interests={
            "fashion": 0.5,
            "beauty": 0.45,
            "sneakers": 0.35,
            "sustainability": 0.2,
        },
    ),
    ShopperType.FAMILY: Profile(
        share=25,
        ages=(30, 45),
        genders={"f": 62, "m": 37, "x": 1},
        incomes={"middle": 50, "upper_middle": 25, "lower_middle": 25},
        occupations=(
            "Teacher",
            "Nurse",
            "Civil servant",
            "Accountant",
            "Engineer",
            "Police officer",
            "Office manager",
            "Physiotherapist",
            "",
        ),
        families={"young_children": 100},
        preferred_channels={"email": 70, "post": 10, "": 20},
        followers=(5.0, 0.9),
        service_effort=(2, 5),
        signup_sources={"store": 90, "online": 10},
        english_share=0.1,
        card_share=0.9,
        consents={"email": 0.85, "sms": 0.3, "social_ads": 0.25},
        purchases_per_month=0.8,
        sales_channels={"store": 90, "online": 10},
        lines=(2, 4),
        quantities=(1, 2),
        categories={"kids": 50, "clothing": 15, "shoes": 15, "home": 15, "outdoor": 5},
        price_taste=-0.6,
        discount=(0.1, 0.1, 0.25),
        contacts={
            "email_open": 0.5,
            "email_click": 0.1,
            "card_scan": 0.08,
            "support_ticket": 0.03,
            "survey_response": 0.02,
        },
        interests={"kids": 0.6, "home-decor": 0.25, "outdoor": 0.15},
    ),
    ShopperType.BUSINESS: Profile(
        share=7,
        ages=(28, 62),
        genders={"m": 55, "f": 44, "x": 1},
        incomes={"": 100},
        occupations=(
            "Office manager",
            "Facility manager",
            "Purchasing manager",
            "Owner, interior design studio",
            "Owner, hair salon",
            "Event planner",
            "Hotel manager",
        ),
        families={"business": 100},
        preferred_channels={"phone": 55, "email": 45},
        followers=(3.0, 1.2),
        service_effort=(6, 10),
        signup_sources={"store": 50, "online": 50},
        english_share=0.15,
        card_share=0.5,
        consents={"email": 0.9, "sms": 0.1, "social_ads": 0.05},
        purchases_per_month=0.8,
        sales_channels={"phone": 45, "online": 40, "store": 15},
        lines=(3, 6),
        quantities=(2, 12),
        categories={
            "home": 35,
            "accessories": 20,
            "outdoor": 20,
            "bags": 15,
            "beauty": 10,
        },
        price_taste=-0.8,
        discount=(0.6, 0.05, 0.15),
        invoice=True,
        contacts={"email_open": 0.5, "support_ticket": 0.3},
        fixed_tags=("b2b",),
    ),
    ShopperType.LAPSED: Profile(
        share=15,
        ages=(25, 70),
        genders={"f": 52, "m": 46, "x": 2},
        incomes={"lower_middle": 30, "middle": 40, "upper_middle": 20, "": 10},
        occupations=(
            "Retired",
            "Shop owner",
            "Teacher",
            "Driver",
            "Nurse",
            "",
            "Consultant",
        ),
        families={"single": 30, "couple": 30, "empty_nest": 20, "older_children": 20},
        preferred_channels={"email": 60, "": 40},
        followers=(4.0, 1.3),
        service_effort=(2, 6),
        signup_sources={"store": 70, "online": 30},
        english_share=0.1,
        card_share=0.7,
        consents={"email": 0.8, "sms": 0.2, "social_ads": 0.2},
        purchases_per_month=0.4,
        sales_channels={"store": 65, "online": 35},
        lines=(1, 3),
        quantities=(1, 2),
        categories={
            "clothing": 30,
            "shoes": 25,
            "home": 20,
            "accessories": 15,
            "bags": 10,
        },
        price_taste=-0.5,
        discount=(0.1, 0.1, 0.25),
        lapses=True,
        contacts={"email_open": 0.6, "web_visit": 0.2},
        interests={"fashion": 0.15, "home-decor": 0.15},
    ),
    ShopperType.BARGAIN: Profile(
        share=13,
        ages=(20, 70),
        genders={"f": 55, "m": 43, "x": 2},
        incomes={"low": 30, "lower_middle": 40, "middle": 30},
        occupations=(
            "Warehouse worker",
            "Student",
            "Retired",
            "Cleaner",
            "Cook",
            "Administrative assistant",
            "",
        ),
        families={"single": 35, "couple": 25, "older_children": 25, "empty_nest": 15},
        preferred_channels={"email": 75, "sms": 15, "": 10},
        followers=(5.0, 1.0),
        service_effort=(1, 4),
        signup_sources={"online": 55, "store": 45},
        english_share=0.1,
        card_share=0.85,
        consents={"email": 0.95, "sms": 0.4, "social_ads": 0.35},
        purchases_per_month=0.5,
        sales_channels={"store": 55, "online": 45},
        lines=(1, 3),
        quantities=(1, 2),
        categories={
            "clothing": 30,
            "shoes": 25,
            "home": 15,
            "accessories": 15,
            "outdoor": 10,
            "beauty": 5,
        },
        price_taste=-0.8,
        discount=(0.8, 0.2, 0.5),
        seasonal=True,
        contacts={
            "email_open": 0.8,
            "email_click": 0.3,
            "web_visit": 0.2,
            "cart_abandoned": 0.1,
            "wishlist_add": 0.1,
        },
        interests={"sale-alerts": 0.6, "fashion": 0.15},
    ),
}


def shopper_types(*, seed: int, customers: int) -> list[ShopperType]:
    """The shopper type of each demo customer, by customer index.

    `seed_demo --seed S --customers N` gives customer `i` the email
    `<first>.<last>.<i>@example.com` and the type `shopper_types(seed=S,
    customers=N)[i]`. Every type gets its share of the customers (rounded by largest
    remainder, so each type is present from about 20 customers on), in shuffled
    order.
    """
    total_share = sum(profile.share for profile in PROFILES.values())
    exact = {kind: customers * p.share / total_share for kind, p in PROFILES.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(exact, key=lambda kind: counts[kind] - exact[kind])
    for kind in by_remainder[: customers - sum(counts.values())]:
        counts[kind] += 1
    types = [kind for kind in PROFILES for _ in range(counts[kind])]
    random.Random(f"shopper-types/{seed}").shuffle(types)  # noqa: S311
    return types


_EMAIL_INDEX = re.compile(r"\.(\d+)@example\.com$")


def customer_index(email: str) -> int | None:
    """The index of a demo customer from its email, or None for other customers."""
    match = _EMAIL_INDEX.search(email or "")
    return int(match.group(1)) if match else None
