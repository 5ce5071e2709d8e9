"""Reads of customers shared by the API, the backoffice and other apps, each written in the
form an index serves (see the indexes on ``Customer``)."""

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, IContains

from accounts.models import Customer, NameSearchKey, name_search_key


def email_equals(field: str, email: str) -> Exact:
    """``field`` equals ``email`` in any case, as ``LOWER(field) = LOWER(email)``: the form the
    ``lower(email)`` indexes serve (``__iexact`` compiles to ``UPPER(...)``, which they do not)."""
    return Exact(Lower(field), Lower(Value(email.strip())))


def customer_text_match(term: str, *, fields: tuple[str, ...] = ("email", "name")) -> Q:
    """A case-insensitive substring of any of ``fields``. ``icontains`` compiles to
    ``UPPER(field) LIKE UPPER('%term%')``, which the trigram indexes on ``UPPER(field)`` serve
    for terms of three characters or more; the name through its search key."""
    if any(c.isspace() for c in term):
        # An e-mail address holds no whitespace: its trigram index would only add candidates.
        fields = tuple(f for f in fields if f != "email") or fields
    match = Q()
    for field in fields:
        match |= _name_contains(term) if field == "name" else Q(**{f"{field}__icontains": term})
    return match


def _name_contains(term: str) -> Q:
    # The key's condition is what the index serves; the plain one is the exact match.
    return Q(IContains(NameSearchKey("name"), name_search_key(term))) & Q(name__icontains=term)


def customers_with_email(email: str, *, organization=None) -> QuerySet[Customer]:
    customers = Customer.objects.filter(email_equals("email", email))
    return customers if organization is None else customers.filter(organization=organization)
