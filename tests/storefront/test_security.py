"""Production security: `check --deploy` is clean, a strict CSP on every page, staff pages guarded."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.urls import reverse

from tests.orders.staff_fixtures import make_order

ROOT = Path(settings.BASE_DIR)


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a real deployment: DEBUG off, real-looking credentials, no sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    for name in ("DEBUG", "SANDBOX", "CELERY_TASK_ALWAYS_EAGER", "SECURE_COOKIES", "SECURE_SSL_REDIRECT",
                 "SECURE_HSTS_SECONDS", "EMAIL_URL"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="storefront.settings",
        TOKENSTORE_IGNORE_DOTENV="1",
        DEBUG="0",
        SANDBOX="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.example.com",
        SITE_URL="https://shop.example.com",
        CSRF_TRUSTED_ORIGINS="https://shop.example.com",
        OPENROUTER_API_KEY="sk-or-v1-" + secrets.token_hex(32),
        KRYPTO_EXPRESS_API_KEY=secrets.token_hex(24),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        EMAIL_URL="smtp+tls://alerts:" + secrets.token_urlsafe(16) + "@smtp.example.com:587",
    )
    env.update(overrides)
    return env


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS" not in output


def test_check_deploy_would_catch_an_insecure_setting():
    # The same check fails when a production safeguard is switched off (so the test above can fail).
    result = run_manage("check", "--deploy", "--fail-level", "WARNING",
                        env=production_env(SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="0"))
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout


def test_production_refuses_to_start_half_configured():
    result = run_manage("check", env=production_env(OPENROUTER_API_KEY=""))
    assert result.returncode != 0
    assert "half-configured" in result.stderr


# --- Content Security Policy ------------------------------------------------------------------


def _script_src(header: str) -> str:
    directives = dict(part.strip().split(" ", 1) for part in header.split(";") if " " in part.strip())
    return directives.get("script-src", directives.get("default-src", ""))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url_name, who",
    [
        ("orders:catalogue", "anonymous"),
        ("accounts:login", "anonymous"),
        ("orders:list", "customer"),
        ("admin:index", "staff"),
        ("admin:orders_aitokenorder_changelist", "staff"),
        ("admin:django_celery_beat_periodictask_add", "staff"),
        ("orders:staff_metrics", "staff"),
        ("healthz", "anonymous"),
    ],
)
def test_every_page_has_a_csp_without_inline_scripts(client, url_name, who, user, staff_user):
    if who == "customer":
        client.force_login(user)
    elif who == "staff":
        client.force_login(staff_user)
    response = client.get(reverse(url_name))
    assert response.status_code in (200, 503), response.status_code
    header = response["Content-Security-Policy"]
    script_src = _script_src(header)
    assert "'self'" in script_src
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header
    assert "frame-ancestors 'none'" in header and "object-src 'none'" in header
    if response["Content-Type"].startswith("text/html"):
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
        assert not EVENT_HANDLER.search(html)
        assert not STYLE_ATTRIBUTE.search(html)


@pytest.mark.django_db
def test_order_detail_in_admin_has_no_inline_scripts(staff_client):
    order = make_order()
    html = staff_client.get(reverse("admin:orders_aitokenorder_change", args=[order.pk])).content.decode()
    assert not INLINE_SCRIPT.search(html)


def test_base_template_configures_htmx_for_the_csp():
    base = (ROOT / "templates" / "base.html").read_text()
    assert '"includeIndicatorStyles":false' in base


# A <script> without src that is not a JSON data block (json_script) would need 'unsafe-inline'.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.I)


def test_no_template_in_the_project_needs_unsafe_inline():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")) + sorted(ROOT.glob("*/templates/**/*.html")):
        if "emails" in path.parts:
            continue  # HTML email needs inline styles, and no browser applies our CSP to it
        text = path.read_text()
        for name, pattern in (("inline <script>", INLINE_SCRIPT), ("on* handler", EVENT_HANDLER),
                              ("style attribute", STYLE_ATTRIBUTE), ("javascript: URL", JAVASCRIPT_URL)):
            if pattern.search(text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_the_pattern_really_catches_inline_scripts():
    assert INLINE_SCRIPT.search('<script>alert(1)</script>')
    assert INLINE_SCRIPT.search('<script type="module">x()</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/js/app.js" defer></script>')
    assert not INLINE_SCRIPT.search('<script id="d" type="application/json">{}</script>')
    assert EVENT_HANDLER.search('<button onclick="x()">')
    assert STYLE_ATTRIBUTE.search('<div style="color:red">')


# --- Staff-only pages -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["orders:staff_metrics", "orders:staff_export", "admin:index",
                                      "admin:orders_aitokenorder_changelist"])
def test_staff_pages_send_anonymous_visitors_to_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert "login" in response["Location"]


@pytest.mark.django_db
def test_staff_pages_refuse_customers(user_client):
    assert user_client.get(reverse("orders:staff_metrics")).status_code == 403
    assert user_client.get(reverse("orders:staff_export")).status_code == 403
    response = user_client.get(reverse("admin:orders_aitokenorder_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_pages_open_for_staff(staff_client):
    assert staff_client.get(reverse("orders:staff_metrics")).status_code == 200
    assert staff_client.get(reverse("admin:orders_aitokenorder_changelist")).status_code == 200


# --- Logs never carry a secret ------------------------------------------------------------------


def _record(msg: str, *args, **extra):
    import logging

    record = logging.LogRecord("orders.test", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_log_filter_scrubs_configured_secrets_and_key_shaped_tokens(settings):
    from storefront.log_format import RedactSecretsFilter

    settings.OPENROUTER_API_KEY = "mgmt-key-0123456789abcdef"
    record = _record("calling with %s and customer key %s", "mgmt-key-0123456789abcdef", "sk-or-v1-" + "a" * 64)
    assert RedactSecretsFilter().filter(record) is True
    text = record.getMessage()
    assert "mgmt-key-0123456789abcdef" not in text and "a" * 64 not in text
    assert text.count("[redacted]") == 2


def test_log_filter_scrubs_exception_text(settings):
    import logging

    from storefront.log_format import RedactSecretsFilter

    settings.KRYPTO_EXPRESS_API_KEY = "gateway-key-abcdefghijkl"
    try:
        raise RuntimeError("401 for X-Api-Key: gateway-key-abcdefghijkl")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactSecretsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "RuntimeError" in formatted and "gateway-key-abcdefghijkl" not in formatted


def test_json_log_lines_carry_the_extra_fields():
    import json

    from storefront.log_format import JsonFormatter

    line = JsonFormatter().format(_record("order=%s moved", "TS-abc", order_id="TS-abc", ms=12))
    payload = json.loads(line)
    assert payload["message"] == "order=TS-abc moved"
    assert payload["order_id"] == "TS-abc" and payload["ms"] == 12
    assert payload["level"] == "WARNING" and payload["logger"] == "orders.test"


def test_logging_config_always_redacts():
    handler = settings.LOGGING["handlers"]["console"]
    assert "redact_secrets" in handler["filters"]
