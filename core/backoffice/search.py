"""Admin search that stays fast on large tables."""

import uuid

from django.contrib import admin
from django.db.models import Q


def parse_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


class IdSearchMixin(admin.ModelAdmin):
    """A search term that is a UUID finds the row by primary key (an index lookup), or by
    an exact match on ``search_id_also`` fields (say, a merchant's own ``external_id``);
    other terms go through ``search_fields`` as usual. So ``search_fields`` need not list
    ``=id``, which Django would turn into ``UPPER(id::text) = UPPER(...)`` on every row."""

    search_id_field = "pk"
    search_id_also: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        found = parse_uuid(search_term) if search_term else None
        if found is None:
            return super().get_search_results(request, queryset, search_term)
        match = Q(**{self.search_id_field: found})
        for field in self.search_id_also:
            match |= Q(**{field: search_term.strip()})
        return queryset.filter(match), False
