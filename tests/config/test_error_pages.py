"""Error pages say what happened and where to go, in the layout the user was in."""

import pytest
from django.urls import reverse

from crm.demo.users import demo_users_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(django_user_model, store):
    demo_users_ensure()
    return django_user_model.objects.get(username="marketer")


def test_an_admin_page_outside_the_role_is_a_403_page_naming_the_role(client, marketer):
    client.force_login(marketer)

    response = client.get(reverse("admin:auth_user_changelist"))

    assert response.status_code == 403
    content = response.content.decode()
    assert "You have no access to this page" in content
    assert "You are signed in as marketer (Marketers)" in content
    assert f'href="{reverse("admin:index")}"' in content
    assert 'id="nav-sidebar"' in content  # the admin's navigation stays


def test_the_till_page_refuses_a_user_without_a_store_in_the_tills_layout(
    client, marketer
):
    client.force_login(marketer)

    response = client.get(reverse("desk:sale"))

    assert response.status_code == 403
    content = response.content.decode()
    assert "The desk is for clerks with a store." in content
    assert 'id="nav-sidebar"' not in content
    assert f'href="{reverse("admin:index")}">Open the admin' in content
