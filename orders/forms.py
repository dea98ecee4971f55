"""Checkout forms: they parse and bound what the browser sends; prices are never taken from it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from orders.pricing import PricingInputError, parse_token_count
from payments.currencies import accepted_currencies


class TokenCountField(forms.Field):
    """A token count typed by a person ("5,000", " 5000 "), parsed by the pricing rules.

    `parse_token_count` bounds the length and accepts ASCII digits only; range rules are the quote's.
    """

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_token_count(str(value))
        except PricingInputError as exc:
            raise ValidationError(str(exc), code="invalid") from None


class QuoteRequestForm(forms.Form):
    """`GET /orders/new/?model=&tokens=`: what the customer picked in the catalogue."""

    model = forms.CharField(max_length=200)
    tokens = TokenCountField()
    top_up_of = forms.CharField(max_length=50, required=False)


def currency_choices() -> list[tuple[str, str]]:
    return [(c.code, f"{c.name} ({c.network})") for c in accepted_currencies()]


class CheckoutForm(forms.Form):
    """`POST /orders/`: the confirmed order. `seen_total` is only compared, never charged."""

    model = forms.CharField(max_length=200)
    tokens = TokenCountField()
    crypto = forms.ChoiceField(choices=(), label="Pay with")
    seen_total = forms.DecimalField(max_digits=8, decimal_places=2, min_value=0, required=False)
    idempotency_key = forms.UUIDField()
    # The delivered order whose key this order adds tokens to (orders/services/top_up.py).
    top_up_of = forms.CharField(max_length=50, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["crypto"].choices = currency_choices()
