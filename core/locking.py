"""Row locks that survive a concurrent change of the locked row's foreign keys.

``select_for_update(of=("self",))`` joined to related tables re-checks the join when the
row was updated while we waited: if a concurrent plan change moved ``price_id``, the
updated row no longer joins the price read at the start, PostgreSQL drops it and
``.get()`` raises ``DoesNotExist`` for a row that exists. Locking the row alone, then
reading it with its relations (a new statement, so the committed state), cannot miss it.
"""

from django.db import models


def lock_row(queryset: models.QuerySet, pk, *, related: tuple[str, ...] = ()) -> models.Model:
    """Lock the row ``pk`` of ``queryset`` and return it, freshly read, with ``related`` joined."""
    queryset.model.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).get()
    return queryset.select_related(*related).get(pk=pk)
