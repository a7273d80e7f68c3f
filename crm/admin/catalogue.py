from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.models import Category, Product

from ..formats import money
from .base import ChangedFieldsSaveMixin


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent"]
    list_select_related = ["parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]


@admin.register(Product)
class ProductAdmin(ChangedFieldsSaveMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "sku",
        "category",
        "price_display",
        "cost_display",
        "stock_level",
        "is_active",
    ]
    list_select_related = ["category"]
    list_filter = ["is_active", "category"]
    search_fields = ["=sku", "=barcode", "name"]
    search_help_text = _("Exact SKU or barcode, or part of the name.")
    autocomplete_fields = ["category"]
    list_per_page = 50

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, obj: Product) -> str:
        return money(obj.price)

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, obj: Product) -> str:
        return money(obj.cost)
