"""Account pages: thin wrappers around Django's auth views, plus signup and the rate limits."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import (
    CappedPasswordChangeForm,
    CappedSetPasswordForm,
    EmailAuthenticationForm,
    EmailPasswordResetForm,
    SignupForm,
)
from accounts.pending_order import auth_context
from accounts.services import EmailTaken, account_register
from accounts.throttling import throttle_posts

# The password the customer just chose is the one they log in with; ModelBackend checks it.
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def safe_next_url(request: HttpRequest) -> str:
    """The `next` the visitor came with if it points back into this site, else the catalogue."""
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password1", "password2")
@never_cache
@throttle_posts(scope="signup", rate_setting="SIGNUP_RATE_LIMIT")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(safe_next_url(request))
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = account_register(email=form.cleaned_data["email"], password=form.cleaned_data["password1"])
        except EmailTaken:
            form.email_taken()
        else:
            login(request, user, backend=_MODEL_BACKEND)
            messages.success(request, "Welcome! Your account is ready.")
            return redirect(safe_next_url(request))
    next_url = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    return render(request, "accounts/signup.html", {"form": form, "next": next_url, **auth_context(request)})


class LoginView(auth_views.LoginView):
    """Django's login, plus the summary of the order the visitor was about to place."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **auth_context(self.request)}


# Login: throttled per IP and per submitted email *before* Django's LoginView checks the password.
# (Marked sensitive first, so an error report raised by the throttle never shows the password.)
login_view = sensitive_post_parameters()(
    throttle_posts(scope="login", rate_setting="LOGIN_RATE_LIMIT", email_field="username")(
        LoginView.as_view(
            template_name="accounts/login.html",
            authentication_form=EmailAuthenticationForm,
            redirect_authenticated_user=True,
        )
    )
)

class LogoutView(auth_views.LogoutView):
    """Log out by POST; a GET asks first, on a page of its own (as django-allauth does).

    The header's "Log out" is a link here rather than a form, so the pages everyone browses carry
    no CSRF token: the catalogue, cached per version, then costs a signed-in visitor no token to
    mint and sets no cookie (docs/WEB_SPEED.md). Logging out stays a POST with a CSRF token, so no
    link or image elsewhere can log a customer out. A GET never ends the session.
    """

    http_method_names = ["get", "post", "options"]
    template_name = "accounts/logout.html"

    @method_decorator(never_cache)
    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(settings.LOGOUT_REDIRECT_URL or "/")
        return self.render_to_response(self.get_context_data(cancel_url=safe_next_url(request)))



class PasswordResetView(auth_views.PasswordResetView):
    """Emails a reset link built from the request's (ALLOWED_HOSTS-checked) host.

    The response is the same "check your inbox" page whether or not the address has an account.
    """

    form_class = EmailPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self) -> dict:
        return {"expiry_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}


password_reset = throttle_posts(scope="password_reset", rate_setting="PASSWORD_RESET_RATE_LIMIT", email_field="email")(
    PasswordResetView.as_view()
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    form_class=CappedSetPasswordForm,
    template_name="registration/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = CappedPasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")
