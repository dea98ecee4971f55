from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.views.decorators.debug import sensitive_post_parameters

from accounts.models import User
from accounts.throttling import throttle_posts


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "date_joined")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


# The admin's login form is a second door to the same accounts (the most valuable ones): it shares
# the store login's per-IP and per-email limits, so an attacker gains nothing by switching doors.
admin.site.login = sensitive_post_parameters()(
    throttle_posts(scope="login", rate_setting="LOGIN_RATE_LIMIT", email_field="username")(admin.site.login)
)
