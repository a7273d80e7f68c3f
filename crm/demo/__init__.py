"""Believable demo data: Dutch stores, a catalogue, staff accounts and customers who
shop the way a handful of shopper types do.

`shopper_types(seed=S, customers=N)[i]` is the type of the customer with email
`<first>.<last>.<i>@example.com` after `manage.py seed_demo --seed S --customers N`;
`customer_index(email)` reads `i` back.
"""

from .seed import DemoSummary, demo_seed
from .shoppers import ShopperType, customer_index, shopper_types
from .users import DemoLogin, demo_users_ensure

__all__ = [
    "DemoLogin",
    "DemoSummary",
    "ShopperType",
    "customer_index",
    "demo_seed",
    "demo_users_ensure",
    "shopper_types",
]
