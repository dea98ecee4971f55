"""KryptoExpress's payment callback: verify, then treat it as a hint to re-read the payment.

CSRF-exempt (the gateway cannot send a token); trust comes from the per-order HMAC signature
instead. Answers: 200 handled (including duplicates and replays), 400 malformed, 403 bad or
missing signature, 404 unknown payment, 413 body too large, 503 gateway unreadable (the
gateway retries later). Nothing changes on any 4xx.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders.services.payment_updates import CallbackRejected, payment_callback_handle
from payments.callbacks import MAX_CALLBACK_BYTES
from payments.client import KryptoExpressError

logger = logging.getLogger("orders.callback")


@csrf_exempt
@require_POST
def kryptoexpress_callback(request: HttpRequest) -> JsonResponse:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_CALLBACK_BYTES:
        return JsonResponse({"ok": False, "error": "too large"}, status=413)
    raw_body = request.read(MAX_CALLBACK_BYTES + 1)
    if len(raw_body) > MAX_CALLBACK_BYTES:
        return JsonResponse({"ok": False, "error": "too large"}, status=413)
    try:
        changed = payment_callback_handle(raw_body=raw_body, signature=request.headers.get("X-Signature"))
    except CallbackRejected as rejected:
        return JsonResponse({"ok": False, "error": rejected.reason}, status=rejected.status_code)
    except KryptoExpressError as exc:
        logger.warning("callback verified but the payment could not be re-read: %s", type(exc).__name__)
        return JsonResponse({"ok": False, "error": "gateway unavailable"}, status=503)
    return JsonResponse({"ok": True, "changed": changed})
