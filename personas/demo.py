"""Demo personas that match the seeded shopper types, so the persona cards and the
overview show real figures from the first start."""

from decimal import Decimal
from typing import Any

from .models import Persona
from .services import persona_create

DEMO_PERSONAS: tuple[dict[str, Any], ...] = (
    {
        "name": "Joe",
        "title": "Special-occasion buyer",
        "avatar": "J",
        "query": 'avg_order_value >= 250 and purchase_channel = "store"',
        "priority": 20,
        "age_min": 30,
        "age_max": 50,
        "gender": "m",
        "job_title": "Consultant",
        "family_situation": "couple",
        "income_band": "high",
        "location": "Amsterdam",
        "web_savviness": "high",
        "research": "Compares online for a week or two, then comes to the shop to try.",
        "buying_channels": ["store", "online"],
        "purchases_per_month": Decimal("0.33"),
        "typical_basket": Decimal("300"),
        "brand_loyalty": "high",
        "goals": "Look good at weddings, parties and work; buy presents that land.",
        "pain_points": "No time to browse; wrong sizes; queues at the till.",
        "values": "Quality over quantity, good service.",
        "buying_role": "decides_pays",
        "social_influence": "medium",
        "service_needs": "Personal advice in store; easy exchanges.",
        "preferred_channels": ["email"],
        "message_tone": "Calm, confident, about quality and occasions.",
        "notes": "Four big visits a year; December doubles.",
        "sources": ["sales_team", "analytics"],
    },
    {
        "name": "Sarah",
        "title": "Young online regular",
        "avatar": "S",
        "query": 'age between 18 and 25 and purchase_channel = "online"',
        "priority": 30,
        "age_min": 18,
        "age_max": 25,
        "gender": "f",
        "job_title": "Student",
        "family_situation": "single",
        "income_band": "low",
        "location": "Utrecht",
        "web_savviness": "high",
        "research": "Instagram, TikTok and friends; reviews on the phone.",
        "buying_channels": ["online", "store"],
        "purchases_per_month": Decimal("1.0"),
        "typical_basket": Decimal("35"),
        "brand_loyalty": "low",
        "goals": "Keep up with trends on a student budget.",
        "pain_points": "Shipping costs, slow delivery, returns by post.",
        "values": "Sustainability, authenticity.",
        "buying_role": "decides_pays",
        "social_influence": "high",
        "service_needs": "Chat, quick answers, free returns.",
        "preferred_channels": ["social", "sms", "push"],
        "message_tone": "Short, playful, visual.",
        "notes": "Buys small and often; abandons carts.",
        "sources": ["analytics", "surveys"],
    },
    {
        "name": "Femke",
        "title": "Parent of young children",
        "avatar": "F",
        "query": 'family_situation = "young_children"',
        "priority": 10,
        "age_min": 30,
        "age_max": 45,
        "gender": "f",
        "job_title": "Teacher",
        "family_situation": "young_children",
        "income_band": "middle",
        "location": "Rotterdam",
        "web_savviness": "medium",
        "research": "Newsletter and the shop window on the way to school.",
        "buying_channels": ["store"],
        "purchases_per_month": Decimal("0.8"),
        "typical_basket": Decimal("110"),
        "brand_loyalty": "medium",
        "goals": "Clothes and shoes the children grow into, without a second trip.",
        "pain_points": "Sizes sold out; children in the shop.",
        "values": "Practical, durable, fair prices.",
        "buying_role": "decides",
        "social_influence": "medium",
        "service_needs": "Stock checks by phone; loyalty points.",
        "preferred_channels": ["email", "post"],
        "message_tone": "Warm and practical.",
        "sources": ["surveys", "interviews"],
    },
    {
        "name": "Bram",
        "title": "Business buyer",
        "avatar": "B",
        "query": 'family_situation = "business" or tags contains "b2b"',
        "priority": 40,
        "age_min": 30,
        "age_max": 60,
        "gender": "m",
        "job_title": "Office manager",
        "family_situation": "business",
        "location": "Utrecht",
        "web_savviness": "medium",
        "research": "Calls the shop; asks for a quote.",
        "buying_channels": ["phone", "online"],
        "purchases_per_month": Decimal("0.8"),
        "typical_basket": Decimal("600"),
        "brand_loyalty": "high",
        "goals": "Reliable supply, one invoice, delivery on time.",
        "pain_points": "Chasing orders; prices without VAT.",
        "values": "Reliability.",
        "buying_role": "influences",
        "social_influence": "low",
        "service_needs": "A named contact; invoices; bulk discounts.",
        "preferred_channels": ["phone", "email"],
        "message_tone": "Businesslike and brief.",
        "sources": ["sales_team"],
    },
    {
        "name": "Linda",
        "title": "Bargain hunter",
        "avatar": "L",
        "query": (
            "email_opens_30d >= 1 and avg_order_value < 90 "
            "and last_purchase within 120 days"
        ),
        "priority": 5,
        "age_min": 25,
        "age_max": 65,
        "gender": "f",
        "income_band": "lower_middle",
        "web_savviness": "medium",
        "research": "Reads every newsletter; waits for the sales.",
        "buying_channels": ["store", "online"],
        "purchases_per_month": Decimal("0.5"),
        "typical_basket": Decimal("60"),
        "brand_loyalty": "low",
        "goals": "A good deal.",
        "pain_points": "Full prices; codes that do not work.",
        "values": "Value for money.",
        "buying_role": "decides_pays",
        "social_influence": "low",
        "preferred_channels": ["email", "sms"],
        "message_tone": "Clear offers, dates and percentages.",
        "sources": ["analytics"],
    },
)


def demo_personas_ensure() -> int:
    """`demo_seeded` receiver: create the demo personas that do not exist yet;
    return how many were made.

    No recompute is started: the seeding caller runs `rebuild_segments` (as `make
    run` does), which assigns customers to them.
    """
    made = 0
    for spec in DEMO_PERSONAS:
        spec = dict(spec)
        if Persona.objects.filter(slug=spec["name"].lower()).exists():
            continue
        persona_create(**spec, status=Persona.Status.ACTIVE, recompute=False)
        made += 1
    return made
