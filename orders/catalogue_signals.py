"""Any saved or deleted model or package starts a new catalogue version.

Staff edit both in the admin (one row at a time, through `save()`/`delete()`): these receivers
notice every such write, wherever it comes from. Bulk writes that bypass signals (the catalogue
sync, admin bulk actions) bump the version themselves.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from openrouter.models import AIModel
from orders.models import TokenPackage
from storefront.catalogue_version import catalogue_version_bump


@receiver(post_save, sender=AIModel, dispatch_uid="catalogue_version_aimodel_saved")
@receiver(post_delete, sender=AIModel, dispatch_uid="catalogue_version_aimodel_deleted")
@receiver(post_save, sender=TokenPackage, dispatch_uid="catalogue_version_package_saved")
@receiver(post_delete, sender=TokenPackage, dispatch_uid="catalogue_version_package_deleted")
def catalogue_row_changed(**kwargs) -> None:
    catalogue_version_bump()
