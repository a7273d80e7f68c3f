"""Desk forms: the sale (customer, payment, lines), voiding and signing in.

The sale is a plain server-side form with a formset of lines, so it works without
JavaScript; desk.js only makes it quicker.
"""

import secrets
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField
from phonenumber_field.phonenumber import PhoneNumber

from crm.models import Receipt
from crm.services import LineInput

from .selectors import Identification, desk_customer_identify, desk_products_resolve
from .services import NewCustomer

# Shown next to the opt-in tick and recorded word for word in the consent ledger.
MARKETING_CONSENT_WORDING = _(
    "Yes, I would like to receive offers and news by email. I can unsubscribe at "
    "any time."
)

PAYMENT_METHODS = [
    (method.value, method.label)
    for method in Receipt.PaymentMethod
    if method not in (Receipt.PaymentMethod.ONLINE, Receipt.PaymentMethod.UNKNOWN)
]

MAX_LINES = 100


def token_new() -> str:
    """A fresh idempotency token for one sale form."""
    return secrets.token_hex(16)


class SaleForm(forms.Form):
    token = forms.RegexField(
        regex=r"^[0-9a-f]{32}$",
        widget=forms.HiddenInput,
        error_messages={
            "required": _("This sale form has expired; start a new sale."),
            "invalid": _("This sale form has expired; start a new sale."),
        },
    )
    identifier = forms.CharField(
        label=_("Loyalty card, email or phone"),
        required=False,
        max_length=254,
        help_text=_("Scan the card or type; leave empty for an anonymous sale."),
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "inputmode": "search",
                "enterkeyhint": "search",
            }
        ),
    )
    new_first_name = forms.CharField(
        label=_("First name"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    new_email = forms.EmailField(
        label=_("Email"),
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    new_phone = PhoneNumberField(
        label=_("Phone"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )
    marketing_opt_in = forms.BooleanField(
        label=MARKETING_CONSENT_WORDING, required=False
    )
    email_receipt = forms.BooleanField(
        label=_("Email the receipt"),
        required=False,
        initial=True,
        help_text=_("Only the receipt: this is not consent to marketing."),
    )
    payment_method = forms.ChoiceField(
        label=_("Payment method"),
        choices=PAYMENT_METHODS,
        initial=Receipt.PaymentMethod.CARD,
        widget=forms.RadioSelect,
    )
    points_to_redeem = forms.IntegerField(
        label=_("Redeem points"),
        required=False,
        min_value=0,
        widget=forms.NumberInput(
            attrs={
                "inputmode": "numeric",
                "aria-describedby": "id_points_to_redeem_helptext "
                "id_points_to_redeem_error",
            }
        ),
    )

    NEW_CUSTOMER_FIELDS = ("new_first_name", "new_email", "new_phone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.identification = Identification()

    def clean(self):
        data = super().clean()
        self.identification = identification = desk_customer_identify(
            query=data.get("identifier") or ""
        )
        registering = any(data.get(name) for name in self.NEW_CUSTOMER_FIELDS)
        if registering:
            # An address typed above that matched nobody is the one to register.
            if not data.get("new_email") and identification.unknown_email:
                data["new_email"] = identification.unknown_email
            if not data.get("new_phone") and identification.unknown_phone:
                data["new_phone"] = PhoneNumber.from_string(
                    identification.unknown_phone
                )
            self._clean_registration(data, identification)
        elif identification.error:
            self.add_error("identifier", identification.error)
        elif data.get("marketing_opt_in"):
            self.add_error(
                "marketing_opt_in",
                gettext("Marketing consent is recorded when registering a customer."),
            )
        points = data.get("points_to_redeem") or 0
        if points:
            card = identification.card
            if card is None:
                self.add_error(
                    "points_to_redeem",
                    gettext("Scan the customer's loyalty card to redeem points."),
                )
            elif points > card.points:
                self.add_error(
                    "points_to_redeem",
                    gettext(
                        "Card %(number)s has %(balance)d points; %(wanted)d cannot "
                        "be redeemed."
                    )
                    % {"number": card.number, "balance": card.points, "wanted": points},
                )
        return data

    def _clean_registration(self, data: dict, identification: Identification) -> None:
        if identification.customer is not None:
            self.add_error(
                "new_email",
                gettext(
                    "%(name)s is already a customer; clear the new customer fields."
                )
                % {"name": identification.customer},
            )
            return
        # A card, email or phone typed above that matched nobody is fine: the
        # clerk is registering that person below.
        unknown = (
            identification.unknown_card_number
            or identification.unknown_email
            or identification.unknown_phone
        )
        if identification.error and not unknown:
            self.add_error("identifier", identification.error)
        if not data.get("new_email") and not data.get("new_phone"):
            self.add_error(
                "new_email",
                gettext("Give an email address or a phone number for the customer."),
            )
        if data.get("marketing_opt_in") and not data.get("new_email"):
            self.add_error(
                "marketing_opt_in",
                gettext("Marketing by email needs an email address."),
            )

    def new_customer(self) -> NewCustomer | None:
        data = self.cleaned_data
        if not any(data.get(name) for name in self.NEW_CUSTOMER_FIELDS):
            return None
        phone = data.get("new_phone")
        return NewCustomer(
            first_name=data.get("new_first_name", ""),
            email=data.get("new_email", ""),
            phone=phone.as_e164 if phone else "",
            marketing_opt_in=bool(data.get("marketing_opt_in")),
            consent_wording=str(MARKETING_CONSENT_WORDING),
            card_number=self.identification.unknown_card_number,
        )


class LineForm(forms.Form):
    code = forms.CharField(
        label=_("SKU or barcode"),
        max_length=64,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "list": "desk-products",
                "enterkeyhint": "next",
                "data-line-code": True,
            }
        ),
    )
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=9999,
        initial=1,
        widget=forms.NumberInput(
            attrs={"inputmode": "numeric", "data-line-quantity": True}
        ),
    )
    discount = forms.DecimalField(
        label=_("Discount"),
        required=False,
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        widget=forms.NumberInput(
            attrs={"inputmode": "decimal", "step": "0.01", "data-line-discount": True}
        ),
    )

    def has_changed(self) -> bool:
        # A line without a code is no line: clearing the code removes it, whatever
        # its quantity says.
        return bool((self.data.get(self.add_prefix("code")) or "").strip())


class BaseLineFormSet(forms.BaseFormSet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.initial:
            # Lines kept from a refresh, then one empty line to type into.
            self.extra = len(self.initial) + 1

    def initial_form_count(self) -> int:
        # No line is fixed: every one may be cleared, so all are "extra" forms.
        return 0

    def clean(self):
        """Resolve each line's sku or barcode to a product."""
        if any(self.errors):
            return
        filled = [form for form in self.forms if form.cleaned_data.get("code")]
        if not filled:
            raise ValidationError(
                gettext("Add at least one line: scan or type a product."),
                code="no_lines",
            )
        products = desk_products_resolve(
            codes=[form.cleaned_data["code"] for form in filled]
        )
        for form in filled:
            code = form.cleaned_data["code"].strip()
            product = products.get(code)
            if product is None:
                form.add_error(
                    "code",
                    gettext("No product with SKU or barcode %(code)s.")
                    % {"code": code},
                )
            else:
                form.cleaned_data["product"] = product

    def line_inputs(self) -> tuple[list[LineInput], list[int]]:
        """The lines for receipt_record, and the form index of each line."""
        inputs, indexes = [], []
        for index, form in enumerate(self.forms):
            product = form.cleaned_data.get("product")
            if product is None:
                continue
            inputs.append(
                LineInput(
                    sku=product.sku,
                    quantity=form.cleaned_data["quantity"],
                    discount=form.cleaned_data.get("discount") or Decimal("0"),
                )
            )
            indexes.append(index)
        return inputs, indexes


LineFormSet = forms.formset_factory(
    LineForm,
    formset=BaseLineFormSet,
    extra=1,
    max_num=MAX_LINES,
    absolute_max=MAX_LINES,
    validate_max=True,
)

# Service error keys (see crm.services) and the desk fields they belong next to.
SERVICE_FIELDS = {
    "points_redeemed": "points_to_redeem",
    "loyalty_card": "identifier",
    "number": "identifier",
    "email": "new_email",
    "phone": "new_phone",
    "first_name": "new_first_name",
    "payment_method": "payment_method",
}
LINE_FIELDS = {"sku": "code", "quantity": "quantity", "discount": "discount"}


def sale_errors_attach(
    exc: ValidationError,
    form: SaleForm,
    formset: BaseLineFormSet,
    line_indexes: list[int],
) -> None:
    """Show a service's ValidationError next to the desk fields it is about."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for key, errors in exc.error_dict.items():
        if key.startswith("lines[") and "]." in key:
            position, field = key[len("lines[") :].split("].", 1)
            line_form = formset.forms[line_indexes[int(position)]]
            line_form.add_error(LINE_FIELDS.get(field, "code"), errors)
        elif key == "lines":
            formset._non_form_errors.extend(ValidationError(errors).messages)
        elif key in SERVICE_FIELDS:
            form.add_error(SERVICE_FIELDS[key], errors)
        else:
            form.add_error(None, errors)


class VoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this sale voided?"),
        max_length=200,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )


class ReceiptSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Receipt number or customer"),
        required=False,
        max_length=254,
        widget=forms.SearchInput(attrs={"autocomplete": "off"}),
    )


class DeskLoginForm(AuthenticationForm):
    """Sign-in for clerks; django-axes locks a name after repeated failures."""
