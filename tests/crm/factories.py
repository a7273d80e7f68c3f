"""factory_boy factories for the CRM models.

Factories build rows directly so tests can set up any state; behaviour under test
always goes through the services.
"""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from stdnum import luhn

from crm import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@staff.example")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"store{n}")
    name = factory.LazyAttribute(lambda o: f"Store {o.code}")
    address = "Kalverstraat 1"
    city = "Amsterdam"
    postal_code = "1012 NX"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = factory.SubFactory(CategoryFactory)
    price = Decimal("9.99")
    cost = Decimal("4.00")
    stock_level = 100


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    city = "Utrecht"
    stats = factory.RelatedFactory(
        "tests.crm.factories.CustomerStatsFactory", factory_related_name="customer"
    )


class CustomerStatsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.CustomerStats

    customer = factory.SubFactory(CustomerFactory, stats=None)


def card_number(n: int) -> str:
    body = f"2962{n:08d}"
    return body + luhn.calc_check_digit(body)


class LoyaltyCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LoyaltyCard

    number = factory.Sequence(card_number)
    customer = factory.SubFactory(CustomerFactory)
    issued_at = factory.LazyFunction(timezone.now)
