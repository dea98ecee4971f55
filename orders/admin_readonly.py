"""Admin inlines that show a record's history and never change it."""

from __future__ import annotations


class ReadOnlyInlineMixin:
    """Mix into an `admin.TabularInline` / `StackedInline`: no blank rows, no add, change or delete.

    The rows are written by services (events, refunds) and are the record of what happened;
    staff read them here and act through the order's actions instead. Render them with
    `admin/orders/edit_inline/readonly_tabular.html` or `readonly_stacked.html` (set `template`):
    the admin's markup without the management form, hidden id inputs and add/delete rows.
    """

    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
