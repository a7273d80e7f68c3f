"""The CRM resources of the REST API (/api/v1/).

Views stay thin: `get_queryset` starts from a scoping selector, filters come from
api/filters.py, input serializers check shapes and crm.api.services write.
"""

from datetime import UTC

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.models import (
    Category,
    Consent,
    Contact,
    Customer,
    LoyaltyCard,
    LoyaltyTransaction,
    Product,
    PushToken,
    Receipt,
    Store,
)
from crm.selectors import customer_data_export
from crm.services import customer_erase, push_token_register, push_token_revoke

from . import filters, serializers
from .exceptions import django_errors, drf_errors
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent
from .permissions import ADMINS, EVERYONE, TILLS
from .selectors import (
    consent_ledger_list,
    contact_visible_list,
    customer_visible_list,
    loyalty_card_visible_list,
    loyalty_transaction_list,
    receipt_visible_list,
)
from .services import (
    api_consent_record,
    api_contact_record,
    api_contacts_record_bulk,
    api_customer_create,
    api_customer_update,
    api_receipt_record,
    api_receipt_void,
)

# What a POST with an Idempotency-Key may answer besides its own result.
IDEMPOTENCY_RESPONSES = {
    422: OpenApiResponse(description="Idempotency-Key reused, other body."),
}
ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid input: see `errors`."),
    404: OpenApiResponse(description="Not found, or outside the token's scope."),
}


class ApiViewSetMixin:
    """Defaults every API view shares; `@action(...)` may override them."""

    # Cursor pagination's order: a unique, never-changing column first.
    ordering: str | tuple[str, ...] = "-id"
    read_roles = EVERYONE
    write_roles = ADMINS
    filterset_class = None
    filterset_fields = None
    throttle_scope = None

    def dispatch(self, request, *args, **kwargs):
        # Times go out in UTC ("...Z"): integrations in any zone read them alike,
        # and old dates never carry a local mean time offset such as +00:19:32.
        with timezone.override(UTC):
            return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        # A nested list (a customer's receipts, say) is of another model than
        # the view: its `@action(queryset=...)` tells the schema generator which.
        if getattr(self, "swagger_fake_view", False) and self.queryset is not None:
            return self.queryset
        return self.scoped_queryset()

    def scoped_queryset(self):
        raise NotImplementedError

    def get_object(self):
        # Looked up without the filters: on a nested list (a customer's receipts)
        # they belong to the nested rows, not to the object the URL names.
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        obj = get_object_or_404(
            self.get_queryset(), **{self.lookup_field: self.kwargs[lookup_url_kwarg]}
        )
        self.check_object_permissions(self.request, obj)
        return obj


# Catalogue ---------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List stores"),
    retrieve=extend_schema(summary="A store, by code"),
)
class StoreViewSet(ApiViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Store.objects.none()
    serializer_class = serializers.StoreSerializer
    filterset_class = filters.StoreFilter
    lookup_field = "code"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    read_roles = EVERYONE

    def scoped_queryset(self):
        return Store.objects.all()


@extend_schema_view(
    list=extend_schema(summary="List product categories"),
    retrieve=extend_schema(summary="A category, by slug"),
)
class CategoryViewSet(ApiViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Category.objects.none()
    serializer_class = serializers.CategorySerializer
    filterset_class = filters.CategoryFilter
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    read_roles = EVERYONE

    def scoped_queryset(self):
        return Category.objects.select_related("parent")


@extend_schema_view(
    list=extend_schema(summary="List products"),
    retrieve=extend_schema(summary="A product, by SKU"),
)
class ProductViewSet(ApiViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Product.objects.none()
    serializer_class = serializers.ProductSerializer
    filterset_class = filters.ProductFilter
    lookup_field = "sku"
    lookup_value_regex = "[^/]+"
    read_roles = EVERYONE

    def scoped_queryset(self):
        return Product.objects.select_related("category")


# Customers ---------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List customers"),
    retrieve=extend_schema(
        summary="A customer",
        responses={200: serializers.CustomerSerializer, 404: ERROR_RESPONSES[404]},
    ),
    create=extend_schema(
        summary="Register a customer",
        request=serializers.CustomerInputSerializer,
        responses={201: serializers.CustomerSerializer, 400: ERROR_RESPONSES[400]},
    ),
    update=extend_schema(
        summary="Replace a customer's fields",
        request=serializers.CustomerInputSerializer,
        responses={200: serializers.CustomerSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some of a customer's fields",
        request=serializers.CustomerInputSerializer,
        responses={200: serializers.CustomerSerializer, **ERROR_RESPONSES},
    ),
)
class CustomerViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Customers. A till sees the customers its stores serve: home store, a
    receipt or a contact there."""

    queryset = Customer.objects.none()
    serializer_class = serializers.CustomerSerializer
    filterset_class = filters.CustomerFilter
    lookup_value_regex = "[0-9]+"
    read_roles = EVERYONE
    write_roles = TILLS

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The list's filters include those the apps built on crm add (hook); the
        # nested lists' actions bring their own filterset_class.
        if self.filterset_class is filters.CustomerFilter:
            self.filterset_class = filters.customer_filter_class()

    def scoped_queryset(self):
        return customer_visible_list(user=self.request.user)

    def _output(self, customer, status_code):
        customer = self.get_queryset().get(pk=customer.pk)
        return Response(
            serializers.CustomerSerializer(customer).data, status=status_code
        )

    def create(self, request):
        serializer = serializers.CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            customer = api_customer_create(
                user=request.user, data=serializer.validated_data
            )
            return self._output(customer, status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        customer = self.get_object()
        serializer = serializers.CustomerInputSerializer(
            customer, data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            customer = api_customer_update(
                user=request.user, customer=customer, data=serializer.validated_data
            )
            return self._output(customer, status.HTTP_200_OK)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(
        summary="Everything held about a customer (for their access request)",
        description=(
            "Profile, consent ledger, sales with their lines, loyalty cards with "
            "their ledgers, contacts, statistics, segments and persona, as one JSON "
            "document. API admins only."
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], filterset_class=None, read_roles=ADMINS)
    def export(self, request, pk=None):
        customer = self.get_object()
        return Response(
            customer_data_export(customer=customer),
            headers={
                "Content-Disposition": (
                    f'attachment; filename="customer-{customer.pk}.json"'
                )
            },
        )

    @extend_schema(
        summary="Erase a customer's personal data (the right to erasure)",
        description=(
            "Blanks every field that names, reaches or describes the customer, "
            "withdraws their consents, blocks their loyalty cards, clears their "
            "contacts' payloads and tells `customer.erased` subscribers. Sales and "
            "statistics stay, anonymous. Erasing twice is harmless; an erased "
            "customer cannot be changed or sold to again. API admins only."
        ),
        request=None,
        responses={200: serializers.CustomerSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"], filterset_class=None, write_roles=ADMINS)
    def erase(self, request, pk=None):
        customer = self.get_object()
        with transaction.atomic():
            customer = customer_erase(customer=customer, by=request.user)
            return self._output(customer, status.HTTP_200_OK)

    @extend_schema(
        methods=["GET"],
        summary="A customer's consent ledger, newest first",
        responses={200: serializers.ConsentSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Append a consent decision to the ledger",
        request=serializers.ConsentInputSerializer,
        responses={201: serializers.ConsentSerializer, **ERROR_RESPONSES},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        filterset_class=None,
        ordering=("-recorded_at", "-id"),
        queryset=Consent.objects.none(),
    )
    def consents(self, request, pk=None):
        customer = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(consent_ledger_list(customer=customer))
            return self.get_paginated_response(
                serializers.ConsentSerializer(page, many=True).data
            )
        serializer = serializers.ConsentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        consent = api_consent_record(
            user=request.user, customer=customer, data=serializer.validated_data
        )
        return Response(
            serializers.ConsentSerializer(consent).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        methods=["POST"],
        summary="Register a device's push token for the customer",
        description=(
            "The shop's app calls this when the customer signs in on a device (and "
            "may on every start). Idempotent: the same token again keeps one "
            "registration and makes it live and the customer's newest; a token "
            "registered for another customer moves to this one. Pushes go to the "
            "customer's newest live token. 201 when the token is new, else 200."
        ),
        request=serializers.PushTokenInputSerializer,
        responses={
            200: serializers.PushTokenSerializer,
            201: serializers.PushTokenSerializer,
            **ERROR_RESPONSES,
        },
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Revoke a push token (the customer signed out of the app)",
        description="Harmless twice; 404 when the customer never held the token.",
        parameters=[
            OpenApiParameter(
                "token",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="The token to revoke, URL-encoded.",
            )
        ],
        request=None,
        responses={204: None, 404: ERROR_RESPONSES[404]},
    )
    @action(
        detail=True,
        methods=["post", "delete"],
        url_path="push-tokens",
        filterset_class=None,
        queryset=PushToken.objects.none(),
    )
    def push_tokens(self, request, pk=None):
        customer = self.get_object()
        if request.method == "DELETE":
            token = request.query_params.get("token", "").strip()
            # No stored token holds a NUL, and PostgreSQL refuses to compare one.
            if (
                not token
                or "\x00" in token
                or not customer.push_tokens.filter(token=token).exists()
            ):
                raise Http404
            push_token_revoke(token=token, customer=customer)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = serializers.PushTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        push_token, created = push_token_register(
            customer=customer, **serializer.validated_data
        )
        return Response(
            serializers.PushTokenSerializer(push_token).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="A customer's contacts, newest first",
        responses={200: serializers.ContactSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.CustomerContactFilter,
        queryset=Contact.objects.none(),
    )
    def contacts(self, request, pk=None):
        customer = self.get_object()
        contacts = self.filter_queryset(
            contact_visible_list(user=request.user).filter(customer=customer)
        )
        page = self.paginate_queryset(contacts)
        return self.get_paginated_response(
            serializers.ContactSerializer(page, many=True).data
        )

    @extend_schema(
        summary="A customer's receipts, newest first",
        responses={200: serializers.ReceiptSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.ReceiptFilter,
        queryset=Receipt.objects.none(),
    )
    def receipts(self, request, pk=None):
        customer = self.get_object()
        receipts = self.filter_queryset(
            receipt_visible_list(user=request.user).filter(customer=customer)
        )
        page = self.paginate_queryset(receipts)
        return self.get_paginated_response(
            serializers.ReceiptSerializer(page, many=True).data
        )


# Loyalty -----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List loyalty cards"),
    retrieve=extend_schema(summary="A loyalty card, by number"),
)
class LoyaltyCardViewSet(ApiViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = LoyaltyCard.objects.none()
    serializer_class = serializers.LoyaltyCardSerializer
    filterset_class = filters.LoyaltyCardFilter
    lookup_field = "number"
    lookup_value_regex = "[0-9]{1,19}"
    read_roles = EVERYONE

    def scoped_queryset(self):
        return loyalty_card_visible_list(user=self.request.user)

    @extend_schema(
        summary="A card's points ledger, newest first",
        responses={200: serializers.LoyaltyTransactionSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.LoyaltyTransactionFilter,
        queryset=LoyaltyTransaction.objects.none(),
    )
    def transactions(self, request, number=None):
        card = self.get_object()
        entries = self.filter_queryset(loyalty_transaction_list(card=card))
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(
            serializers.LoyaltyTransactionSerializer(page, many=True).data
        )


# Receipts ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List receipts"),
    retrieve=extend_schema(summary="A receipt"),
)
class ReceiptViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Receipt.objects.none()
    serializer_class = serializers.ReceiptSerializer
    filterset_class = filters.ReceiptFilter
    lookup_value_regex = "[0-9]+"
    read_roles = EVERYONE
    write_roles = TILLS

    def scoped_queryset(self):
        return receipt_visible_list(user=self.request.user)

    @extend_schema(
        summary="Record a sale",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=serializers.ReceiptInputSerializer,
        responses={
            201: serializers.ReceiptCreatedSerializer,
            400: ERROR_RESPONSES[400],
            **IDEMPOTENCY_RESPONSES,
        },
    )
    def create(self, request):
        serializer = serializers.ReceiptInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def record() -> Response:
            receipt, created = api_receipt_record(
                user=request.user, data=serializer.validated_data
            )
            receipt.customer_created = created
            return Response(
                serializers.ReceiptCreatedSerializer(receipt).data,
                status=status.HTTP_201_CREATED,
            )

        return idempotent(request, scope="receipts", handler=record)

    @extend_schema(
        summary="Void a sale (points, stock and statistics are reversed)",
        request=serializers.ReceiptVoidInputSerializer,
        responses={200: serializers.ReceiptSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def void(self, request, pk=None):
        receipt = self.get_object()
        serializer = serializers.ReceiptVoidInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_receipt_void(
            user=request.user,
            receipt=receipt,
            reason=serializer.validated_data["reason"],
        )
        return Response(
            serializers.ReceiptSerializer(self.get_queryset().get(pk=receipt.pk)).data
        )


# Contacts ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List contacts"),
    retrieve=extend_schema(summary="A contact"),
)
class ContactViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Contact.objects.none()
    serializer_class = serializers.ContactSerializer
    filterset_class = filters.ContactFilter
    lookup_value_regex = "[0-9]+"
    read_roles = EVERYONE
    write_roles = TILLS

    def scoped_queryset(self):
        return contact_visible_list(user=self.request.user)

    @extend_schema(
        summary="Record a contact (an event such as a web visit)",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=serializers.ContactInputSerializer,
        responses={
            201: serializers.ContactSerializer,
            400: ERROR_RESPONSES[400],
            **IDEMPOTENCY_RESPONSES,
        },
    )
    def create(self, request):
        serializer = serializers.ContactInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def record() -> Response:
            contact = api_contact_record(
                user=request.user, data=serializer.validated_data
            )
            return Response(
                serializers.ContactSerializer(contact).data,
                status=status.HTTP_201_CREATED,
            )

        return idempotent(request, scope="contacts", handler=record)

    @extend_schema(
        summary="Record up to 1,000 contacts at once",
        description=(
            "Each contact is checked on its own. Valid ones are stored even when "
            "others are refused; `results` says, per index, which."
        ),
        parameters=[IDEMPOTENCY_PARAMETER],
        request=serializers.ContactBulkInputSerializer,
        responses={
            200: serializers.ContactBulkResultSerializer,
            400: ERROR_RESPONSES[400],
            **IDEMPOTENCY_RESPONSES,
        },
    )
    @action(detail=False, methods=["post"], filterset_class=None)
    def bulk(self, request):
        envelope = serializers.ContactBulkInputSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        items = envelope.validated_data["contacts"]

        def record() -> Response:
            checked: list[tuple[int, dict]] = []
            results: list[dict | None] = [None] * len(items)
            for index, item in enumerate(items):
                serializer = serializers.ContactInputSerializer(data=item)
                if serializer.is_valid():
                    checked.append((index, serializer.validated_data))
                else:
                    results[index] = {
                        "index": index,
                        "status": "invalid",
                        "errors": drf_errors(serializer.errors),
                    }
            outcomes = api_contacts_record_bulk(
                user=request.user, items=[data for _index, data in checked]
            )
            for (index, _data), outcome in zip(checked, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    results[index] = {
                        "index": index,
                        "status": "invalid",
                        "errors": django_errors(outcome),
                    }
                else:
                    results[index] = {
                        "index": index,
                        "status": "created",
                        "id": outcome.pk,
                    }
            created = sum(1 for result in results if result["status"] == "created")
            return Response(
                {
                    "created": created,
                    "invalid": len(results) - created,
                    "results": results,
                }
            )

        return idempotent(request, scope="contacts-bulk", handler=record)
