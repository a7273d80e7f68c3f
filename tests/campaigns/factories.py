"""factory_boy factories for the campaign models.

They write rows directly so tests can set up any state (a scheduled campaign, a
run with deliveries); behaviour under test goes through the services.
"""

import factory
from django.utils import timezone

from campaigns import models
from crm.models import Channel
from personas.models import Persona
from tests.crm.factories import CustomerFactory


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Campaign
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    kind = models.Campaign.Kind.ONE_OFF
    status = models.Campaign.Status.DRAFT
    channels = factory.LazyFunction(lambda: [Channel.EMAIL])
    holdout_percent = 10


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Message

    campaign = factory.SubFactory(CampaignFactory)
    name = factory.Sequence(lambda n: f"message-{n}")
    channel = Channel.EMAIL
    subject = "Hello {{ first_name }}"
    body_text = "Hello {{ first_name }}, this week's offers are in store."
    body_html = ""
    weight = 1


class CampaignRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.CampaignRun

    campaign = factory.SubFactory(CampaignFactory)
    key = factory.Sequence(lambda n: f"run-{n}")
    due_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Delivery

    run = factory.SubFactory(CampaignRunFactory)
    campaign = factory.SelfAttribute("run.campaign")
    customer = factory.SubFactory(CustomerFactory)
    channel = Channel.EMAIL
    message = None
    status = models.Delivery.Status.PLANNED
    planned_at = factory.LazyFunction(timezone.now)


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Persona
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Persona {n}")
    slug = factory.Sequence(lambda n: f"persona-{n}")
    status = Persona.Status.ACTIVE
    rules = factory.LazyFunction(lambda: {"field": "orders", "op": "gte", "value": 1})
