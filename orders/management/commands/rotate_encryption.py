"""Re-encrypt every stored secret (delivered keys, callback secrets) under the newest Fernet key.

Rotation: put a new key FIRST in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run `manage.py rotate_encryption`, check it reports no failures, then remove the old keys.
Prints counts only — never a secret.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from orders.models import AITokenOrder
from storefront.encryption import InvalidToken, rotate

FIELDS = ("key_encrypted", "callback_secret_encrypted")


class Command(BaseCommand):
    help = "Re-encrypt stored delivered keys and callback secrets under the newest FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="Check every secret decrypts; write nothing.")

    def handle(self, *args, batch_size: int, dry_run: bool, **options) -> None:
        rows = (
            AITokenOrder.objects.filter(~Q(key_encrypted="") | ~Q(callback_secret_encrypted=""))
            .values_list("pk", "order_id", *FIELDS)
            .order_by("pk")
        )
        rotated = 0
        failed: list[str] = []
        for pk, order_id, *tokens in rows.iterator(chunk_size=batch_size):
            for name, token in zip(FIELDS, tokens, strict=True):
                if not token:
                    continue
                try:
                    new_token = rotate(token)
                except InvalidToken:
                    failed.append(f"{order_id}.{name}")
                    continue
                if dry_run:
                    rotated += 1
                    continue
                # Conditional on the value we read: a concurrent write is never overwritten.
                rotated += AITokenOrder.objects.filter(pk=pk, **{name: token}).update(**{name: new_token})
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{verb} {rotated} secret(s)")
        if failed:
            raise CommandError(
                f"{len(failed)} secret(s) no configured key can decrypt (left unchanged): " + ", ".join(failed[:20])
            )
