"""The contract every endpoint keeps: auth, roles, errors, pagination, throttling."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.crm.factories import CustomerFactory

from .conftest import errors_of


def test_requests_without_a_token_are_401_with_the_error_format(db):
    response = APIClient().get("/api/v1/customers/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert errors_of(response) == [(None, "not_authenticated")]


def test_a_wrong_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert errors_of(client.get("/api/v1/stores/")) == [(None, "authentication_failed")]


def test_a_token_of_a_deactivated_user_is_401(till):
    till.user.is_active = False
    till.user.save(update_fields=["is_active"])

    response = till.get("/api/v1/stores/")

    assert response.status_code == 401
    assert errors_of(response) == [(None, "authentication_failed")]


def test_authentication_reads_the_roles_and_store_the_permissions_need(
    store, django_assert_num_queries
):
    """DRF's token query brings the staff row; the groups come prefetched."""
    from crm.api.authentication import ApiTokenAuthentication
    from crm.api.permissions import api_roles, till_store_ids
    from crm.roles import API_TILLS, MARKETERS
    from tests.api.conftest import role_user

    user = role_user("two-hats", API_TILLS, store=store)
    user.groups.add(Group.objects.get_or_create(name=MARKETERS)[0])
    user.groups.add(Group.objects.create(name="Not an API role"))
    key = Token.objects.create(user=user).key

    with django_assert_num_queries(2):
        authenticated, token = ApiTokenAuthentication().authenticate_credentials(key)
    with django_assert_num_queries(0):
        roles, store_ids = api_roles(authenticated), till_store_ids(authenticated)

    assert (authenticated.pk, authenticated.username, token.key) == (
        user.pk,
        "two-hats",
        key,
    )
    assert token.created == Token.objects.get(key=key).created
    assert roles == {"till", "marketing"}
    assert store_ids == {store.pk}


def test_a_user_without_a_staff_row_has_no_store(db, django_assert_num_queries):
    from crm.api.authentication import ApiTokenAuthentication
    from crm.api.permissions import till_store_ids
    from tests.api.conftest import role_user

    key = Token.objects.create(user=role_user("reader-2", "API read-only")).key
    authenticated, _token = ApiTokenAuthentication().authenticate_credentials(key)

    with django_assert_num_queries(0):
        assert till_store_ids(authenticated) == frozenset()


def test_a_user_without_an_api_role_is_denied_everything(nobody):
    for url in ("/api/v1/stores/", "/api/v1/customers/", "/api/v1/segments/"):
        response = nobody.get(url)
        assert response.status_code == 403
        assert errors_of(response) == [(None, "permission_denied")]


def test_drf_create_token_makes_a_working_token(db, store):
    from tests.api.conftest import role_user

    role_user("shop", "API read-only")
    call_command("drf_create_token", "shop", verbosity=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get().key}")

    assert client.get("/api/v1/stores/").json()["results"][0]["code"] == "ams"


def test_session_sign_in_works_for_the_browsable_docs(db, admin_user):
    client = APIClient()
    client.force_login(admin_user)

    assert client.get("/api/v1/customers/").status_code == 200


def test_unknown_objects_are_404_in_the_error_format(reader):
    response = reader.get("/api/v1/customers/999999999/")

    assert response.status_code == 404
    assert errors_of(response) == [(None, "not_found")]


def test_method_not_allowed_is_405(reader):
    response = reader.delete("/api/v1/stores/ams/")

    assert response.status_code in (403, 405)
    assert response.json()["errors"]


def test_cursor_pages_walk_the_whole_list_once(reader):
    created = {CustomerFactory().pk for _ in range(7)}

    seen, url, pages = [], "/api/v1/customers/?page_size=3", 0
    while url:
        page = reader.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url, pages = page["next"], pages + 1

    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("size", ["0", "1001", "-1", "many"])
def test_page_size_out_of_range_is_400(reader, size):
    response = reader.get("/api/v1/customers/", {"page_size": size})

    assert response.status_code == 400
    assert errors_of(response) == [("page_size", "invalid_page_size")]


def test_page_size_of_1000_is_allowed(reader):
    assert reader.get("/api/v1/customers/", {"page_size": 1000}).status_code == 200


@pytest.mark.parametrize("cursor", ["garbage", "cD1hYmM=", "cj0yJnA9eA=="])
def test_forged_cursors_are_400(reader, cursor):
    response = reader.get("/api/v1/customers/", {"cursor": cursor})

    assert response.status_code == 400
    assert errors_of(response) == [("cursor", "invalid_cursor")]


def test_a_cursor_beyond_every_id_gives_an_empty_page(reader):
    # p=99999999999999999999999: past the integer range, so nothing comes after.
    response = reader.get(
        "/api/v1/customers/", {"cursor": "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ=="}
    )

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.fixture
def fresh_throttle(settings):
    """Forget the counters of earlier runs (user ids repeat across test databases)."""
    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("the throttle counters live in Redis (set REDIS_URL)")
    client = cache._cache.get_client()
    keys = client.keys("*api-throttle:*")
    if keys:
        client.delete(*keys)


def test_invalid_filter_values_are_400_naming_the_filter(reader):
    response = reader.get("/api/v1/customers/", {"created_after": "yesterday"})

    assert response.status_code == 400
    assert errors_of(response) == [("created_after", "invalid")]


def test_throttled_requests_get_429_with_retry_after(reader, settings, fresh_throttle):
    settings.LOYALIST_API_THROTTLE_RATES = {"default": "3/hour"}
    assert "Redis" in settings.CACHES["default"]["BACKEND"], "run with REDIS_URL set"

    statuses = [reader.get("/api/v1/stores/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = reader.get("/api/v1/stores/")
    assert errors_of(response) == [(None, "throttled")]
    assert 1 <= int(response["Retry-After"]) <= 3601


def test_throttling_counts_per_token(reader, marketer, settings, fresh_throttle):
    settings.LOYALIST_API_THROTTLE_RATES = {"default": "2/hour"}

    for _ in range(2):
        reader.get("/api/v1/stores/")

    assert reader.get("/api/v1/stores/").status_code == 429
    assert marketer.get("/api/v1/stores/").status_code == 200


def test_throttle_counter_lives_in_the_shared_cache(reader, settings, fresh_throttle):
    settings.LOYALIST_API_THROTTLE_RATES = {"default": "5/min"}

    reader.get("/api/v1/stores/")

    keys = cache._cache.get_client().keys(
        f"*api-throttle:default:user:{reader.user.pk}:*"
    )
    assert len(keys) == 1


def test_schema_is_served_and_docs_render(db):
    client = APIClient()

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/v1/receipts/" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_schema_generation_has_no_warnings(db, tmp_path):
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yml"),
    )
