"""The store clerk's desk: record a sale, confirm it, email, print or void it."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.models import Product, Receipt, Store
from crm.services.receipt_email import receipt_email_request

from .forms import (
    MAX_LINES,
    DeskLoginForm,
    LineFormSet,
    ReceiptSearchForm,
    SaleForm,
    VoidForm,
    sale_errors_attach,
    token_new,
)
from .permissions import SESSION_STORE_KEY, desk_required, superuser_required
from .selectors import (
    Identification,
    desk_customer_identify,
    desk_product_search,
    desk_products_resolve,
    desk_receipt_get,
    desk_receipt_list,
)
from .services import desk_receipt_void, desk_sale_record

RECEIPTS_PER_PAGE = 50

# Fields of the sale form carried over, as typed, when the page is refreshed.
SALE_TEXT_FIELDS = (
    "token",
    "identifier",
    "new_first_name",
    "new_email",
    "new_phone",
    "payment_method",
    "points_to_redeem",
)


class DeskLoginView(auth_views.LoginView):
    template_name = "desk/login.html"
    authentication_form = DeskLoginForm
    redirect_authenticated_user = True
    next_page = reverse_lazy("desk:sale")


class DeskLogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("desk:login")


@dataclass(frozen=True)
class LineRow:
    """A line of the sale form with what its code resolved to."""

    form: object
    product: Product | None
    line_total: Decimal | None


def _line_rows(formset) -> tuple[list[LineRow], Decimal]:
    codes = [(form["code"].value() or "").strip() for form in formset.forms]
    products = desk_products_resolve(codes=codes)
    rows, total = [], Decimal("0.00")
    for form, code in zip(formset.forms, codes, strict=True):
        product = products.get(code)
        line_total = None
        if product is not None:
            try:
                quantity = int(form["quantity"].value() or 1)
                discount = Decimal(str(form["discount"].value() or "0"))
                line_total = product.price * quantity - discount
            except (ValueError, InvalidOperation):
                line_total = None
            else:
                total += line_total
        rows.append(LineRow(form=form, product=product, line_total=line_total))
    return rows, total


def _sale_render(
    request: HttpRequest, form: SaleForm, formset, identification: Identification
) -> HttpResponse:
    rows, total = _line_rows(formset)
    return render(
        request,
        "desk/sale.html",
        {
            "store": request.desk_store,
            "form": form,
            "formset": formset,
            "rows": rows,
            "total": total,
            "identification": identification,
            "currency": settings.LOYALIST_CURRENCY,
            "point_value": settings.LOYALIST_POINT_VALUE,
        },
    )


def _sale_refresh(request: HttpRequest) -> HttpResponse:
    """Look up the customer and the products, keep all that was typed, record
    nothing: what Enter does in a field when JavaScript is off."""
    post = request.POST
    initial = {name: post.get(name, "") for name in SALE_TEXT_FIELDS}
    initial["marketing_opt_in"] = bool(post.get("marketing_opt_in"))
    initial["email_receipt"] = bool(post.get("email_receipt"))
    if len(initial["token"]) != 32:
        initial["token"] = token_new()
    identification = desk_customer_identify(query=initial["identifier"])
    if not initial["new_email"] and identification.unknown_email:
        initial["new_email"] = identification.unknown_email
    if not initial["new_phone"] and identification.unknown_phone:
        initial["new_phone"] = identification.unknown_phone
    try:
        count = min(int(post.get("lines-TOTAL_FORMS", 0)), MAX_LINES)
    except ValueError:
        count = 0
    lines = [
        {
            "code": post.get(f"lines-{index}-code", "").strip(),
            "quantity": post.get(f"lines-{index}-quantity", "1"),
            "discount": post.get(f"lines-{index}-discount", ""),
        }
        for index in range(count)
    ]
    lines = [line for line in lines if line["code"]][: MAX_LINES - 1]
    form = SaleForm(initial=initial)
    formset = LineFormSet(prefix="lines", initial=lines)
    return _sale_render(request, form, formset, identification)


def _sale_record(request: HttpRequest) -> HttpResponse:
    store = request.desk_store
    form = SaleForm(request.POST)
    formset = LineFormSet(request.POST, prefix="lines")
    form_valid = form.is_valid()
    lines_valid = formset.is_valid()
    if form_valid and lines_valid:
        lines, line_indexes = formset.line_inputs()
        identification = form.identification
        try:
            receipt = desk_sale_record(
                store=store,
                clerk=request.user,
                token=form.cleaned_data["token"],
                lines=lines,
                payment_method=form.cleaned_data["payment_method"],
                customer=identification.customer,
                card=identification.card,
                new_customer=form.new_customer(),
                points_to_redeem=form.cleaned_data.get("points_to_redeem") or 0,
                send_email=form.cleaned_data["email_receipt"],
            )
        except ValidationError as exc:
            sale_errors_attach(exc, form, formset, line_indexes)
        else:
            if receipt.store_id != store.pk:
                raise Http404("No such receipt in this store.")
            return redirect("desk:receipt_detail", pk=receipt.pk)
    return _sale_render(request, form, formset, form.identification)


@require_http_methods(["GET", "POST"])
@desk_required
def sale(request: HttpRequest) -> HttpResponse:
    """The till: identify the customer, enter lines, take payment."""
    if request.method == "POST":
        if request.POST.get("action", "record") == "record":
            return _sale_record(request)
        return _sale_refresh(request)
    form = SaleForm(initial={"token": token_new()})
    formset = LineFormSet(prefix="lines")
    return _sale_render(request, form, formset, Identification())


@require_GET
@desk_required
def customer_lookup(request: HttpRequest) -> JsonResponse:
    """Who the scanned card, email or phone belongs to, for the sale page."""
    identification = desk_customer_identify(query=request.GET.get("q", "")[:254])
    context = {
        "identification": identification,
        "currency": settings.LOYALIST_CURRENCY,
        "point_value": settings.LOYALIST_POINT_VALUE,
    }
    return JsonResponse(
        {
            **identification.as_json(),
            # The page swaps these in: one template for the page and the lookup.
            "html": render_to_string("desk/_customer.html", context, request),
            "points_help": render_to_string("desk/_points_help.html", context, request),
        }
    )


@require_GET
@desk_required
def product_search(request: HttpRequest) -> JsonResponse:
    products = desk_product_search(query=request.GET.get("q", "")[:64])
    return JsonResponse(
        {
            "results": [
                {
                    "sku": product.sku,
                    "barcode": product.barcode or "",
                    "name": product.name,
                    "price": str(product.price),
                    "active": product.is_active,
                }
                for product in products
            ]
        }
    )


@require_GET
@desk_required
def receipt_list(request: HttpRequest) -> HttpResponse:
    """Today's sales in this store; a search looks through every day."""
    search = ReceiptSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    receipts = desk_receipt_list(store=request.desk_store, query=query)
    page = Paginator(receipts, RECEIPTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/receipt_list.html",
        {
            "store": request.desk_store,
            "search": search,
            "query": query,
            "page": page,
        },
    )


@require_GET
@desk_required
def receipt_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The confirmation: number, points, email state; resend, print or void."""
    receipt = desk_receipt_get(store=request.desk_store, pk=pk)
    return render(
        request,
        "desk/receipt_detail.html",
        {
            "store": request.desk_store,
            "receipt": receipt,
            "lines": receipt.lines.select_related("product"),
        },
    )


@require_GET
@desk_required
def receipt_print(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = desk_receipt_get(store=request.desk_store, pk=pk)
    return render(
        request,
        "desk/receipt_print.html",
        {
            "store": request.desk_store,
            "receipt": receipt,
            "lines": receipt.lines.select_related("product"),
        },
    )


@require_GET
@desk_required
def receipt_email_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The email state, polled by the confirmation page while it is sending."""
    receipt = desk_receipt_get(store=request.desk_store, pk=pk)
    return JsonResponse(
        {
            "status": receipt.email_status,
            "label": receipt.get_email_status_display(),
        }
    )


@require_POST
@desk_required
def receipt_email_resend(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = desk_receipt_get(store=request.desk_store, pk=pk)
    try:
        receipt_email_request(receipt=receipt)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Receipt %(number)s is being emailed to %(email)s.")
            % {"number": receipt.number, "email": receipt.customer.email},
        )
    return redirect("desk:receipt_detail", pk=receipt.pk)


@require_http_methods(["GET", "POST"])
@desk_required
def receipt_void(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask why, then void the sale: points, stock and statistics are reversed."""
    receipt = desk_receipt_get(store=request.desk_store, pk=pk)
    if receipt.status == Receipt.Status.VOIDED:
        messages.info(request, _("This sale was already voided."))
        return redirect("desk:receipt_detail", pk=receipt.pk)
    form = VoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            desk_receipt_void(
                receipt=receipt, reason=form.cleaned_data["reason"], clerk=request.user
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(
                request,
                _("Sale %(number)s is voided; its points were reversed.")
                % {"number": receipt.number},
            )
            return redirect("desk:receipt_detail", pk=receipt.pk)
    return render(
        request,
        "desk/receipt_void.html",
        {
            "store": request.desk_store,
            "receipt": receipt,
            "form": form,
            "lines": receipt.lines.select_related("product"),
        },
    )


@require_http_methods(["GET", "POST"])
@superuser_required
def store_choose(request: HttpRequest) -> HttpResponse:
    """Administrators pick the store they work the desk for."""
    stores = Store.objects.order_by("name")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    error = ""
    if request.method == "POST":
        store_id = request.POST.get("store", "")
        store = stores.filter(pk=store_id).first() if store_id.isdigit() else None
        if store is not None:
            request.session[SESSION_STORE_KEY] = store.pk
            return redirect(next_url or "desk:sale")
        error = _("Choose one of the stores.")
    return render(
        request,
        "desk/store_choose.html",
        {
            "stores": stores,
            "next": next_url,
            "error": error,
            "current": request.session.get(SESSION_STORE_KEY),
        },
    )
