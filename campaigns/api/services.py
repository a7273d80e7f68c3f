"""The campaign API's writes: thin calls into campaigns.services."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..models import Campaign
from ..services.campaigns import campaign_create, campaign_update


@transaction.atomic
def api_campaign_create(*, user: AbstractBaseUser, data: dict[str, Any]) -> Campaign:
    data = dict(data)
    if "messages" in data:
        data["messages"] = [dict(message) for message in data["messages"]]
    return campaign_create(created_by=user, **data)


@transaction.atomic
def api_campaign_update(
    *, campaign: Campaign, user: AbstractBaseUser, data: dict[str, Any]
) -> Campaign:
    # The slug is the campaign's identity (URLs and reports name it): it stays.
    data = dict(data)
    data.pop("slug", None)
    if "messages" in data:
        data["messages"] = [dict(message) for message in data["messages"]]
    return campaign_update(campaign=campaign, changed_by=user, **data)
