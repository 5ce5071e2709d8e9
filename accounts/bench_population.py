"""A crowd of customers made in one SQL statement, for benchmarks and for tests that need
a table big enough for PostgreSQL to prefer its indexes. Customer ``i`` (1..n) was created
``i`` seconds before ``now``; ``customer_email(i)`` and ``customer_name(i)`` say the rest."""

from datetime import datetime

from django.db import connection, transaction

from accounts.models import Organization

FIRST = (
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "John",
    "Ken",
    "Leslie",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Ruth",
    "Sophie",
    "Tim",
    "Tony",
    "Brian",
    "Dennis",
    "Edith",
    "Fran",
    "Guido",
    "Hal",
    "Jean",
    "Karen",
    "Larry",
    "Mary",
    "Nancy",
    "Ole",
    "Peter",
    "Rasmus",
    "Richard",
    "Robin",
    "Shafi",
    "Silvio",
    "Stephen",
    "Tom",
    "Vint",
    "Whitfield",
    "Yukihiro",
    "Zhou",
    "Anita",
    "Bjarne",
    "Carol",
    "Dana",
    "Evelyn",
)
LAST = (
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "McCarthy",
    "Thompson",
    "Lamport",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Teitelbaum",
    "Wilson",
    "Berners",
    "Hoare",
    "Ritchie",
    "Clarke",
    "Kernighan",
    "Rossum",
    "Abelson",
    "Sammet",
    "Jones",
    "Page",
    "Keller",
    "Kay",
    "Dahl",
    "Naur",
    "Norvig",
    "Lerdorf",
    "Stallman",
    "Milner",
    "Goldwasser",
    "Micali",
    "Cook",
    "Kurtz",
    "Cerf",
    "Diffie",
    "Matsumoto",
    "Yao",
    "Borg",
    "Stroustrup",
    "Shaw",
    "Scott",
    "Codd",
)
DOMAINS = ("example.com", "mail.example", "corp.example", "example.org", "shop.example", "example.net")


def customer_email(i: int) -> str:
    """The seeded customer ``i``'s e-mail (the seed SQL writes the same)."""
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    return f"{first.lower()}.{last.lower()}.{i}@{DOMAINS[i % len(DOMAINS)]}"


def customer_name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"


def customers_seed(*, organization: Organization, n: int, now: datetime) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        # Customer i was created i seconds ago (customer_email and customer_name say the rest).
        cursor.execute(
            """
            INSERT INTO accounts_customer
                (id, created_at, updated_at, organization_id, external_id, email, name,
                 billing_address, tax_id, tax_id_type, metadata, stripe_customer_id,
                 default_payment_method_id)
            SELECT gen_random_uuid(), t, t, %(org)s, 'crm_' || i,
                   lower(f.name) || '.' || lower(l.name) || '.' || i || '@'
                       || (%(domains)s::text[])[i %% %(nd)s + 1],
                   f.name || ' ' || l.name, NULL, '', '', '{}', '', ''
              FROM generate_series(1, %(n)s) AS i
             CROSS JOIN LATERAL (SELECT %(now)s - i * interval '1 second') AS c(t)
             CROSS JOIN LATERAL (SELECT (%(first)s::text[])[i %% %(nf)s + 1]) AS f(name)
             CROSS JOIN LATERAL (SELECT (%(last)s::text[])[(i / %(nf)s) %% %(nl)s + 1]) AS l(name)
            """,
            {"org": organization.pk, "n": n, "now": now, "first": list(FIRST), "nf": len(FIRST),
             "last": list(LAST), "nl": len(LAST), "domains": list(DOMAINS), "nd": len(DOMAINS)},
        )  # fmt: skip
