"""Push: the file provider, dead tokens, and the token services behind them."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.channels import Outgoing, backend_for
from campaigns.channels.push import FilePushBackend, Push, PushBackend, PushTokenDead
from campaigns.models import Delivery
from crm.models import Channel, PushToken
from crm.selectors import push_token_newest_live
from crm.services import customer_erase, push_token_register, push_token_revoke
from tests.crm.factories import CustomerFactory

from .channel_support import campaign_run, delivery, outbox, outgoing

__all__ = ["outbox"]


def test_the_configured_push_backend_is_the_file_provider():
    assert type(backend_for(Channel.PUSH)) is FilePushBackend


def test_file_provider_writes_token_title_body_and_delivery(db, outbox):
    customer = CustomerFactory()
    item = delivery(campaign_run(), customer, Channel.PUSH)

    (outcome,) = FilePushBackend().send([outgoing(item, "fcm:abc-123")])

    assert outcome.sent is True
    assert [json.loads(line) for line in (outbox / "push.jsonl").open()] == [
        {
            "provider_message_id": outcome.provider_message_id,
            "delivery_id": item.pk,
            "token": "fcm:abc-123",
            "title": "Sale",
            "body": "Shoes -20%",
        }
    ]


def test_a_message_without_a_token_fails_permanently(db, outbox):
    item = delivery(campaign_run(), CustomerFactory(), Channel.PUSH)

    (outcome,) = FilePushBackend().send([outgoing(item, "  ")])

    assert (outcome.sent, outcome.permanent) == (False, True)
    assert not (outbox / "push.jsonl").exists()


class ProviderWithDeadTokens(PushBackend):
    """Stands in for APNs/FCM: tokens starting with "dead" are unregistered."""

    def __init__(self):
        self.sent: list[Push] = []

    def send_push(self, push: Push) -> str:
        if push.token.startswith("dead"):
            raise PushTokenDead("UNREGISTERED")
        if push.token == "flaky":
            raise TimeoutError("provider timed out")
        self.sent.append(push)
        return f"provider-{push.delivery_id}"


def test_a_dead_token_is_revoked_and_fails_permanently(db):
    alive, gone, flaky = CustomerFactory(), CustomerFactory(), CustomerFactory()
    push_token_register(customer=alive, token="live-1", platform="ios")
    push_token_register(customer=gone, token="dead-1", platform="android")
    push_token_register(customer=flaky, token="flaky", platform="android")
    run = campaign_run()
    items = [delivery(run, c, Channel.PUSH) for c in (alive, gone, flaky)]
    provider = ProviderWithDeadTokens()

    outcomes = provider.send(
        [
            outgoing(i, t)
            for i, t in zip(items, ["live-1", "dead-1", "flaky"], strict=True)
        ]
    )

    assert [(o.sent, o.permanent, o.unknown) for o in outcomes] == [
        (True, False, False),
        (False, True, False),
        # A timeout may come after the provider took it.
        (False, False, True),
    ]
    assert outcomes[0].provider_message_id == f"provider-{items[0].pk}"
    assert outcomes[1].error == "UNREGISTERED"
    assert [p.token for p in provider.sent] == ["live-1"]
    revoked = dict(PushToken.objects.values_list("token", "revoked_at"))
    assert revoked["dead-1"] is not None
    assert revoked["live-1"] is None
    assert revoked["flaky"] is None  # a timeout says nothing about the device


# The token services ---------------------------------------------------------------


def test_registering_a_token_twice_keeps_one_live_row(db):
    customer = CustomerFactory()

    token, created = push_token_register(
        customer=customer, token=" t1 ", platform="ios"
    )
    again, created_again = push_token_register(
        customer=customer, token="t1", platform="ios"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == token.pk
    assert PushToken.objects.get().token == "t1"
    assert again.registered_at >= token.registered_at


def test_a_token_registered_by_another_customer_moves_to_the_new_one(db):
    first, second = CustomerFactory(), CustomerFactory()
    push_token_register(customer=first, token="shared-device", platform="android")

    push_token_register(customer=second, token="shared-device", platform="android")

    token = PushToken.objects.get()
    assert token.customer == second
    assert not first.push_tokens.exists()


def test_re_registering_a_revoked_token_makes_it_live_again(db):
    customer = CustomerFactory()
    push_token_register(customer=customer, token="t1", platform="web")
    assert push_token_revoke(token="t1") is True
    assert push_token_revoke(token="t1") is False  # harmless twice

    push_token_register(customer=customer, token="t1", platform="web")

    assert PushToken.objects.get().revoked_at is None


def test_revoking_for_a_customer_leaves_other_customers_tokens(db):
    owner, other = CustomerFactory(), CustomerFactory()
    push_token_register(customer=owner, token="t1", platform="ios")

    assert push_token_revoke(token="t1", customer=other) is False
    assert PushToken.objects.get().revoked_at is None


@pytest.mark.parametrize(
    ("token", "platform", "field"),
    [("", "ios", "token"), ("x" * 401, "ios", "token"), ("t", "symbian", "platform")],
)
def test_invalid_registrations_are_refused(db, token, platform, field):
    with pytest.raises(ValidationError) as error:
        push_token_register(customer=CustomerFactory(), token=token, platform=platform)

    assert field in error.value.error_dict


def test_an_erased_customer_cannot_register_and_loses_their_tokens(db):
    customer = CustomerFactory()
    push_token_register(customer=customer, token="t1", platform="ios")

    customer_erase(customer=customer)

    assert not PushToken.objects.exists()
    with pytest.raises(ValidationError) as error:
        push_token_register(customer=customer, token="t2", platform="ios")
    assert error.value.error_dict["customer"][0].code == "customer_erased"


def test_pushes_go_to_the_newest_live_token(db):
    customer, without = CustomerFactory(), CustomerFactory()
    old, _ = push_token_register(customer=customer, token="old-phone", platform="ios")
    newest, _ = push_token_register(customer=customer, token="tablet", platform="ios")
    PushToken.objects.filter(pk=old.pk).update(
        registered_at=timezone.now() - timedelta(days=30)
    )
    push_token_register(customer=without, token="gone", platform="ios")
    push_token_revoke(token="gone")
    run = campaign_run()
    with_token = delivery(run, customer, Channel.PUSH)
    without_token = delivery(run, without, Channel.PUSH)

    tokens = dict(
        Delivery.objects.annotate(token=push_token_newest_live()).values_list(
            "pk", "token"
        )
    )

    assert tokens == {with_token.pk: "tablet", without_token.pk: None}
    push_token_revoke(token="tablet")
    assert (
        Delivery.objects.annotate(token=push_token_newest_live())
        .values_list("token", flat=True)
        .get(pk=with_token.pk)
        == "old-phone"
    )
    assert newest.pk != old.pk
    assert isinstance(outgoing(with_token), Outgoing)


def test_the_access_request_export_lists_the_customers_push_tokens(db):
    from crm.selectors import customer_data_export

    customer = CustomerFactory()
    push_token_register(customer=customer, token="t1", platform="ios")
    push_token_revoke(token="t1")

    (token,) = customer_data_export(customer=customer)["push_tokens"]

    assert token["token"] == "t1"
    assert token["platform"] == "ios"
    assert token["revoked_at"] is not None
