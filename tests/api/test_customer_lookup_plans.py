"""The customer list's lookup by e-mail and text search are index scans (issue 11)."""

import pytest
from django.db.models import QuerySet
from django.test import RequestFactory

from accounts.api import CustomerFilter
from accounts.bench_population import customer_email, customer_name
from accounts.models import Customer
from accounts.selectors import _pieces
from tests.plans import plan_without_seqscan, seq_scanned

pytestmark = pytest.mark.django_db


def filtered(org, **params) -> QuerySet[Customer]:
    request = RequestFactory().get("/v1/customers", params)
    customers = Customer.objects.filter(organization=org).order_by("-created_at", "-id")
    return CustomerFilter(params, queryset=customers, request=request).qs[:21]


def test_lookup_by_email_uses_the_lower_email_index(crowd):
    queryset = filtered(crowd, email=customer_email(1234).upper())

    assert [c.email for c in queryset] == [customer_email(1234)]
    plan = plan_without_seqscan(queryset)
    assert "customer_email_idx" in plan and not seq_scanned(plan), plan


def test_iexact_is_a_form_the_email_index_cannot_serve(crowd):
    # Why the filter does not use email__iexact: it compiles to UPPER(email) = UPPER(...).
    queryset = Customer.objects.filter(organization=crowd, email__iexact=customer_email(1234))

    assert "customer_email_idx" not in plan_without_seqscan(queryset)


@pytest.mark.parametrize(
    ("term", "index"),
    [
        (customer_email(12345).split("@")[0][-10:], "customer_email_trgm_idx"),
        (customer_email(12345).split("@")[0], "customer_email_trgm_idx"),  # long: its pieces
        (customer_email(12345), "customer_email_trgm_idx"),
        (customer_name(2), "customer_name_key_trgm_idx"),
    ],
)
def test_text_search_uses_the_trigram_indexes(crowd, term, index):
    queryset = filtered(crowd, query=term)

    assert queryset and all(term.lower() in f"{c.email} {c.name}".lower() for c in queryset)
    plan = plan_without_seqscan(queryset)
    assert index in plan and not seq_scanned(plan), plan


def test_lookup_and_search_through_the_api(crowd, make_api):
    api = make_api(crowd)

    response = api.get("/v1/customers", {"email": customer_email(77).title()})
    assert [c["email"] for c in response.json()["results"]] == [customer_email(77)]

    response = api.get("/v1/customers", {"query": customer_email(4321).split("@")[0]})
    assert [c["email"] for c in response.json()["results"]] == [customer_email(4321)]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("Jean Ritchie", {"Jean Ritchie", "Mary-Jean Ritchie", "Jean Ritchies", "jean ritchie"}),
        ("an Ritch", {"Jean Ritchie", "Mary-Jean Ritchie", "Jean Ritchies", "jean ritchie", "Ivan Ritch"}),
        ("Jean0Ritchie", {"Jean0Ritchie"}),
        ("ean  Rit", {"Jean  Ritchie"}),
        (
            "Jean",
            {
                "Jean Ritchie",
                "Mary-Jean Ritchie",
                "Jean Ritchies",
                "jean ritchie",
                "Jean0Ritchie",
                "Jean  Ritchie",
                "Jeanne Ritchie",
            },
        ),
        ("50%", {"50% Off Ltd"}),
        ("Shafi Shaw", {"Shafi Shaw"}),  # pieces SHA, FI0, SHAW: not SHA twice
    ],
)
def test_name_search_is_an_exact_substring_match(org, term, found):
    # The search key maps a space to "0": whatever it matches beyond the substring (a real
    # "0"), the exact condition drops; a substring is never lost (two spaces, a hyphen).
    names = [
        "Jean Ritchie", "Mary-Jean Ritchie", "Jean Ritchies", "jean ritchie", "Ivan Ritch",
        "Jean0Ritchie", "Jean  Ritchie", "Jeanne Ritchie", "50% Off Ltd", "50 Off",
        "Shafi Shaw", "Shafi Sharp", "Shaw Shafi",
    ]  # fmt: skip
    for i, name in enumerate(names):
        Customer.objects.create(organization=org, email=f"c{i}@example.com", name=name)

    assert {c.name for c in filtered(org, query=term)} == found


@pytest.mark.parametrize(
    ("key", "pieces"),
    [
        ("HEDY0TORVALDS", ("HED", "Y0T", "ORV", "ALD")),
        ("SHAFI0SHAW", ("SHA", "FI0", "SHAW")),  # a tile repeated: the last takes the rest
        ("lovelace.123456", ("lov", "ela", "123", "456")),
    ],
)
def test_a_long_term_is_tiled_into_pieces_that_each_ask_something_new(key, pieces):
    assert _pieces(key) == pieces


def test_a_long_term_gives_the_index_its_pieces_and_keeps_the_exact_match_a_filter(crowd):
    # 16 trigrams cost a GIN scan about 16 times one; the tiling gives it four (accounts.selectors).
    term = customer_email(123456).split("@")[0].split(".", 1)[1]  # "<last name>.123456"
    queryset = filtered(crowd, query=term)

    plan = plan_without_seqscan(queryset)
    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line and "email" in line]
    assert index_conditions and "%123%" in index_conditions[0], plan
    assert term.upper() not in index_conditions[0], plan
    assert "~~*" in plan  # the exact ILIKE, on the plain column


EMAILS = [
    "ada.lovelace.123456@example.com",
    "ada.lovelace.1234567@example.com",
    "ada_lovelace.123456@example.com",
    "adaxlovelace.123456@example.com",
    "ada%lovelace.123456@example.com",
    "ADA.LOVELACE.654321@EXAMPLE.COM",
    "grace.hopper.5@example.com",
    "grace.hopper.15@example.com",
    "jürgen.müller.2024@example.de",
]


@pytest.mark.parametrize(
    "term",
    [
        "ada.lovelace.123456",  # pieces: ADA LOV ELA 123 456
        "a.lovelace.12345",
        "ada_lovelace.123456",  # "_" and "%" are themselves, not LIKE's wildcards
        "ada%lovelace.123456",
        "lovelace.654321@example",
        "grace.hopper.5",
        "hopper.5@example.com",
        "müller.2024@example",
        "JÜRGEN.MÜLLER",
        "lovelace.1234567",
        "lovelace.12345678",
    ],
)
def test_text_search_finds_exactly_the_substring_matches(org, term):
    for i, email in enumerate(EMAILS):
        Customer.objects.create(organization=org, email=email, name=f"Customer {i}")

    found = {c.email for c in filtered(org, query=term)}

    assert found == {email for email in EMAILS if term.lower() in email.lower()}
