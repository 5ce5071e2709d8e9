import pytest
from django.urls import reverse

from accounts import services
from core.audit import audit_record
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

ROWS = 30


@pytest.fixture
def customers(make_org):
    orgs = [make_org(f"Merchant {i}") for i in range(3)]
    return [
        services.customer_create(
            organization=orgs[i % 3], email=f"buyer{i}@example.com", name=f"Buyer {i}", external_id=f"ext-{i}"
        )
        for i in range(ROWS)
    ]


@pytest.fixture
def audit_entries(operator, customers):
    return [
        audit_record(
            actor=operator, action="customer.note", target=c, organization=c.organization, reason=f"r{i}"
        )
        for i, c in enumerate(customers)
    ]


def test_customer_list_has_bounded_queries(backoffice, customers, django_assert_max_num_queries):
    url = reverse("admin:accounts_customer_changelist")
    with django_assert_max_num_queries(10):
        response = backoffice.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "buyer0@example.com" in html and "ext-29" in html and "Merchant 2" in html


def test_customer_search(backoffice, customers):
    url = reverse("admin:accounts_customer_changelist")
    target = customers[7]

    def found(term):
        return list(backoffice.get(url, {"q": term}).context["cl"].result_list)

    assert found("buyer7@") == [target]
    assert found('"Buyer 7"') == [target]
    assert found("ext-7") == [target]
    assert found(str(target.pk)) == [target]
    assert found(str(target.pk).upper()) == [target]


def test_customer_filter_by_organization(backoffice, customers):
    org = customers[0].organization
    url = reverse("admin:accounts_customer_changelist")

    result = backoffice.get(url, {"organization__id__exact": org.pk}).context["cl"].result_list

    assert {c.organization_id for c in result} == {org.pk}
    assert len(result) == ROWS // 3


def test_audit_list_has_bounded_queries(backoffice, audit_entries, django_assert_max_num_queries):
    url = reverse("admin:core_auditentry_changelist")
    with django_assert_max_num_queries(10):
        response = backoffice.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "customer.note" in html
    # Each object links to its own page.
    assert reverse("admin:accounts_customer_change", args=[audit_entries[0].object_id]) in html


def test_audit_search_and_filters(backoffice, audit_entries, customers):
    url = reverse("admin:core_auditentry_changelist")

    def found(**params):
        return list(backoffice.get(url, params).context["cl"].result_list)

    assert found(q=str(customers[3].pk)) == [audit_entries[3]]
    assert found(q="operator@recur.test") == list(AuditEntry.objects.all())
    assert found(q="r12") == [audit_entries[12]]
    assert len(found(action="customer.note")) == ROWS
    assert found(action="nothing") == []
    assert len(found(object_type="accounts.customer")) == ROWS


def test_audit_log_is_read_only_and_shows_data(backoffice, operator, org):
    entry = audit_record(
        actor=operator, action="organization.update", target=org, data={"after": {"fee": 300}}
    )
    change = reverse("admin:core_auditentry_change", args=[entry.pk])

    html = backoffice.get(change).content.decode()

    assert '<pre class="bo-json">' in html
    assert "&quot;after&quot;: {\n    &quot;fee&quot;: 300" in html
    assert 'name="_save"' not in html
    assert backoffice.get(reverse("admin:core_auditentry_add")).status_code == 403
    assert backoffice.post(change, {"reason": "edited"}).status_code == 403
    assert backoffice.get(reverse("admin:core_auditentry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.reason == ""


def test_heartbeat_list_renders(backoffice):
    from core.services import heartbeat_record

    heartbeat_record(name="heartbeat", hostname="w1")

    html = backoffice.get(reverse("admin:core_jobheartbeat_changelist")).content.decode()

    assert "w1" in html and "alive" in html
    assert backoffice.get(reverse("admin:core_jobheartbeat_add")).status_code == 403


def test_token_list_has_bounded_queries(backoffice, make_org, make_token, django_assert_max_num_queries):
    orgs = [make_org(f"Merchant {i}") for i in range(3)]
    for i in range(ROWS):
        make_token(orgs[i % 3])
    with django_assert_max_num_queries(10):
        response = backoffice.get(reverse("admin:accounts_accesstoken_changelist"))
    assert response.status_code == 200
