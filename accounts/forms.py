"""Account forms: every email field normalises (see `accounts.normalization`) before validating."""

from __future__ import annotations

from dataclasses import asdict

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    SetPasswordMixin,
)
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.views.decorators.debug import sensitive_variables

from accounts.models import User
from accounts.normalization import normalize_email
from accounts.password_reset import ResetMailOptions, password_reset_enqueue

EMAIL_MAX_LENGTH = 254
# Real passwords (and password-manager ones) are far shorter; this only stops abuse.
PASSWORD_MAX_LENGTH = 1024


class NormalizedEmailField(forms.EmailField):
    """An email field that validates the canonical spelling, not the typed one.

    Only plain-ASCII addresses survive normalisation (an internationalised domain becomes punycode);
    a non-ASCII local part is refused as invalid rather than stored as a look-alike.
    """

    default_error_messages = {"invalid": "Enter a valid email address, like name@example.com."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", EMAIL_MAX_LENGTH)
        kwargs.setdefault("widget", forms.EmailInput(attrs={"autocomplete": "email"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if not value or len(value) > EMAIL_MAX_LENGTH:
            return value  # empty → "required"; too long → the max-length message
        normalised = normalize_email(value)
        if not normalised.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return normalised


def _first_field_email_input() -> forms.EmailInput:
    return forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})


def _cap_password_fields(form: forms.Form, *names: str) -> None:
    for name in names:
        field = form.fields[name]
        field.validators.append(MaxLengthValidator(PASSWORD_MAX_LENGTH))
        field.widget.attrs["maxlength"] = str(PASSWORD_MAX_LENGTH)


class SignupForm(SetPasswordMixin, forms.Form):
    """Email + password twice, checked by Django's password validators (AUTH_PASSWORD_VALIDATORS)."""

    error_messages = {
        **SetPasswordMixin.error_messages,
        "email_taken": "An account with this email already exists. Log in, or reset your password if you forgot it.",
    }

    email = NormalizedEmailField(label="Email", widget=_first_field_email_input())
    password1, password2 = SetPasswordMixin.create_password_fields(label1="Password", label2="Password (again)")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        _cap_password_fields(self, "password1", "password2")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(self.error_messages["email_taken"], code="email_taken")
        return email

    @sensitive_variables("password")
    def clean(self):
        cleaned = super().clean()
        self.validate_passwords()
        if not self.has_error("password2"):
            # An unsaved user lets UserAttributeSimilarityValidator compare against the email.
            password = cleaned.get("password2")
            if password:
                try:
                    password_validation.validate_password(password, User(email=cleaned.get("email") or ""))
                except ValidationError as error:
                    self.add_error("password2", error)
        return cleaned

    def email_taken(self) -> None:
        """The account appeared between validation and saving (a double submit): say so on the field."""
        self.add_error("email", ValidationError(self.error_messages["email_taken"], code="email_taken"))


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, asking for an email (any case) instead of a username."""

    username = NormalizedEmailField(label="Email", widget=_first_field_email_input())
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Check them and try again.",
    }

    def __init__(self, request=None, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(request, *args, **kwargs)


class EmailPasswordResetForm(PasswordResetForm):
    """Finds the account by its normalised email; sends nothing (and says nothing) when there is none."""

    email = NormalizedEmailField(label="Email", widget=_first_field_email_input())

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def save(self, *, request=None, use_https=False, subject_template_name="registration/password_reset_subject.txt",
             email_template_name="registration/password_reset_email.html", html_email_template_name=None,
             from_email=None, extra_email_context=None, **kwargs):
        """Queue the mail for the worker: the request does the same work whether or not the account exists."""
        options = ResetMailOptions(
            use_https=use_https,
            subject_template_name=subject_template_name,
            email_template_name=email_template_name,
            html_email_template_name=html_email_template_name,
            from_email=from_email,
            extra_email_context=extra_email_context,
        )
        password_reset_enqueue(email=self.cleaned_data["email"], request=request, options=options)


class CappedSetPasswordForm(SetPasswordForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        _cap_password_fields(self, "new_password1", "new_password2")


class CappedPasswordChangeForm(PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        _cap_password_fields(self, "old_password", "new_password1", "new_password2")


def password_reset_send(*, email: str, domain: str, **options) -> None:
    """In the worker: find the account(s) for `email` and send each a one-use reset link.

    `options` are `ResetMailOptions`' fields, as the web request queued them.
    """
    form = EmailPasswordResetForm(data={"email": email})
    if not form.is_valid():
        return
    PasswordResetForm.save(form, domain_override=domain, **asdict(ResetMailOptions(**options)))
