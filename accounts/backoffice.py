"""Backoffice pieces about customers that the billing pages share."""

import re

from django.db.models import Q

from accounts.models import Customer
from accounts.selectors import customers_matching, customers_with_email
from core.backoffice.search import IdSearchMixin, parse_uuid

# Up to this many matching customers are looked up first and their rows found by customer_id.
CUSTOMER_IDS_INLINE = 500
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CustomerEmailSearchMixin(IdSearchMixin):
    """Search a list of rows that belong to a customer: an id finds the row (primary key),
    a whole e-mail address finds the customer's rows, other words the rows of customers
    whose e-mail or name holds every word. Both look the customers up first through their
    own indexes (``lower(email)``, the trigram indexes), then the rows by ``customer_id``: a
    join on ``customer__email`` would make PostgreSQL scan this table."""

    def email_match(self, email: str) -> Q:
        # Few customers share an address: their ids make an index lookup on customer_id.
        return Q(customer_id__in=list(customers_with_email(email).values_list("pk", flat=True)))

    def text_match(self, word: str) -> Q:
        customers = customers_matching(Customer.objects.all(), word).values_list("pk", flat=True)
        ids = list(customers[: CUSTOMER_IDS_INLINE + 1])
        if len(ids) <= CUSTOMER_IDS_INLINE:
            return Q(customer_id__in=ids)
        # A word most customers share: leave the join order to PostgreSQL.
        return Q(customer__in=customers)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if EMAIL_RE.match(term):
            return queryset.filter(self.email_match(term)), False
        if not term or parse_uuid(term) is not None:
            return super().get_search_results(request, queryset, search_term)
        for word in term.split():
            queryset = queryset.filter(self.text_match(word))
        return queryset, False
