"""Reads of customers shared by the API, the backoffice and other apps, each written in the
form an index serves (see the indexes on ``Customer``)."""

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.db.models.lookups import BuiltinLookup, Contains, Exact, IContains

from accounts.models import Customer, NameSearchKey, name_search_key
from core.postgresql.plans import guard_plan

# A term with more trigrams than this asks the index for a tiling of them (see ``_pieces``).
FEW_TRIGRAMS = 6


def email_equals(field: str, email: str) -> Exact:
    """``field`` equals ``email`` in any case, as ``LOWER(field) = LOWER(email)``: the form the
    ``lower(email)`` indexes serve (``__iexact`` compiles to ``UPPER(...)``, which they do not)."""
    return Exact(Lower(field), Lower(Value(email.strip())))


class ILikeContains(Contains):
    """``field::text ILIKE '%term%'`` on the plain column (Django's ``contains`` with ILIKE): a
    substring in any case that the trigram indexes (on ``UPPER(field)``) cannot serve, so the
    planner keeps it a filter and still prices it from the column's statistics."""

    def get_rhs_op(self, connection, rhs):
        return f"ILIKE {rhs}"


class IContainsInOrder(IContains):
    """``UPPER(field) LIKE UPPER('%a%b%c%')``: the pieces ``(a, b, c)`` in this order, in
    any case. The SQL of ``icontains``, so the trigram index on ``UPPER(field)`` serves it,
    and one condition for the rows it finds to be rechecked against, however many pieces."""

    def process_rhs(self, qn, connection):
        rhs, params = BuiltinLookup.process_rhs(self, qn, connection)
        params[0] = "%" + "%".join(connection.ops.prep_for_like_query(piece) for piece in params[0]) + "%"
        return rhs, params


def customer_text_match(term: str, *, fields: tuple[str, ...] = ("email", "name")) -> Q:
    """A case-insensitive substring of any of ``fields``. ``icontains`` compiles to
    ``UPPER(field) LIKE UPPER('%term%')``, which the trigram indexes on ``UPPER(field)`` serve
    for terms of three characters or more; the name through its search key."""
    if any(c.isspace() for c in term):
        # An e-mail address holds no whitespace: its trigram index would only add candidates.
        fields = tuple(f for f in fields if f != "email") or fields
    match = Q()
    for field in fields:
        match |= _name_contains(term) if field == "name" else _contains(field, term)
    return match


def customers_matching(
    queryset: QuerySet[Customer], term: str, *, fields: tuple[str, ...] = ("email", "name")
) -> QuerySet[Customer]:
    """The customers of ``queryset`` that ``customer_text_match`` finds, fetched under the plan
    guard: a term the column statistics happen to hold is taken to match 1% of the table, and a
    page of it would be looked for by walking the whole table (``core/postgresql/plans.py``)."""
    return guard_plan(queryset.filter(customer_text_match(term, fields=fields)))


def _contains(field: str, term: str) -> Q:
    pieces = _pieces(term)
    if pieces is None:
        return Q(**{f"{field}__icontains": term})
    # The pieces are what the index serves; the plain column's ILIKE is the exact match.
    return Q(IContainsInOrder(F(field), pieces)) & Q(ILikeContains(F(field), term))


def _name_contains(term: str) -> Q:
    # The key's condition is what the index serves; the plain one is the exact match.
    key = name_search_key(term)
    pieces = _pieces(key) or (key,)
    return Q(IContainsInOrder(NameSearchKey("name"), pieces)) & Q(name__icontains=term)


def _words(term: str) -> list[tuple[int, str]]:
    """The runs of letters and digits (what the trigram index calls words), with where each
    starts in ``term``."""
    words, start = [], None
    for i, char in enumerate([*term, " "]):
        if char.isalnum():
            start = i if start is None else start
        elif start is not None:
            words.append((start, term[start:i]))
            start = None
    return words


def _pieces(term: str) -> tuple[str, ...] | None:
    """Substrings of ``term``, in its order and not overlapping, that give the trigram index
    fewer trigrams than the whole term; None when the whole term has few enough
    (``FEW_TRIGRAMS``).

    A GIN scan costs about the same for every trigram it is given, rare or common (the
    entry's pages, its posting tree's descent): ``lovelace.123456`` gives 16 and costs 3 ms,
    and most add nothing, since overlapping trigrams say much the same. So each word is
    asked for by the trigrams that tile it (``LOV``, ``ELA``; ``123``, ``456``), and a word
    too short to tile by the character before it (``.5``: a word that starts with 5, which is
    what makes ``hopper.5`` selective). A short term keeps all its trigrams: there the
    overlap is what keeps false candidates out."""
    words = _words(term)
    if sum(max(len(word) - 2, 0) for _, word in words) <= FEW_TRIGRAMS:
        return None
    pieces: list[str] = []
    for start, word in words:
        if len(word) >= 3:
            tiles = [word[i : i + 3] for i in range(0, len(word) - 2, 3)]
            # A tile that repeats one before it asks nothing new ("SHAFI0SHAW": SHA, FI0,
            # SHA, every Shafi): the last then takes the characters left over (SHAW).
            if len(set(tiles)) < len(tiles):
                tiles[-1] = word[3 * (len(tiles) - 1) :]
            pieces += tiles
        elif start > 0:
            pieces.append(term[start - 1 : start + len(word)])
    return tuple(pieces)


def customers_with_email(email: str, *, organization=None) -> QuerySet[Customer]:
    customers = Customer.objects.filter(email_equals("email", email))
    return customers if organization is None else customers.filter(organization=organization)
