"""The double-entry ledger: postings of paid orders, database-enforced invariants,
balances, backfill and reconciliation."""

from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from accounts.models import Organization
from billing.checkout import services as checkout_services
from billing.ledger import selectors
from billing.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, ReconciliationRun
from billing.ledger.reconciliation import reconcile, reconciliation_run
from billing.ledger.services import account_for, ledger_post, ledger_post_order_paid
from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import Subscription
from core.errors import InvalidInput

Kind = LedgerAccount.Kind
START = datetime.fromisoformat("2027-04-01T00:00:00+00:00")


@pytest.fixture
def manual_org(org):
    Organization.objects.filter(pk=org.pk).update(
        payment_processor="manual", platform_fee_bps=500, platform_fee_fixed=30
    )
    org.refresh_from_db()
    return org


def entries_of(ledger_tx) -> dict[str, int]:
    return {e.account.kind: e.amount for e in ledger_tx.entries.select_related("account")}


def buy(org, product, email="buyer@example.com"):
    checkout = checkout_services.checkout_create(
        organization=org, product_id=product.pk, customer_email=email
    )
    checkout_services.checkout_confirm(checkout=checkout, payment_method_id="pm_manual")
    return Order.objects.get(checkout=checkout)


def paid_order(org, customer, *, amount=10_000, tax=0, currency="usd", tax_inclusive=False):
    return order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency=currency,
        lines=[Line(label="Thing", amount=amount)],
        tax=tax,
        tax_inclusive=tax_inclusive,
        paid=True,
    )


@pytest.fixture
def customer(org):
    return org.customers.create(email="c@example.com", name="C")


def raw_unbalanced(cursor, org, account, key="raw:1", amount=500):
    cursor.execute(
        "INSERT INTO ledger_ledgertransaction (id, created_at, type, organization_id, idempotency_key, "
        "description) VALUES (gen_random_uuid(), now(), 'balance_adjustment', %s, %s, '') RETURNING id",
        [org.pk, key],
    )
    tx_id = cursor.fetchone()[0]
    cursor.execute(
        "INSERT INTO ledger_ledgerentry (created_at, transaction_id, account_id, amount, currency) "
        "VALUES (now(), %s, %s, %s, 'usd')",
        [tx_id, account.pk, amount],
    )
    return tx_id


# --- postings through the real services ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_checkout_posts_the_paid_order(manual_org, make_product):
    product = make_product("Ebook", prices=[{"currency": "usd", "type": "fixed", "amount": 2000}])
    order = buy(manual_org, product)
    assert order.status == "paid" and order.total == 2000
    assert order.platform_fee == 2000 * 5 // 100 + 30  # 130

    ledger_tx = LedgerTransaction.objects.get(idempotency_key=f"order:{order.pk}:paid")
    assert (ledger_tx.type, ledger_tx.order_id, ledger_tx.organization_id) == (
        "payment",
        order.pk,
        manual_org.pk,
    )
    assert ledger_tx.payment is not None and ledger_tx.payment.status == "succeeded"
    assert entries_of(ledger_tx) == {
        Kind.PROCESSOR_CASH: 2000,
        **({Kind.TAX_PAYABLE: -order.tax} if order.tax else {}),
        Kind.PLATFORM_REVENUE: -130,
        Kind.MERCHANT_BALANCE: -(2000 - order.tax - 130),
    }
    assert selectors.merchant_balance(manual_org, "usd") == 2000 - order.tax - 130
    assert selectors.platform_revenue("usd") == 130
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_a_renewal_paid_through_dunning_is_posted(manual_org, make_product):
    product = make_product(
        "Monthly", recurring="month", prices=[{"currency": "usd", "type": "fixed", "amount": 3000}]
    )
    with time_machine.travel(START, tick=False):
        checkout = checkout_services.checkout_create(
            organization=manual_org, product_id=product.pk, customer_email="sub@example.com"
        )
        checkout_services.checkout_confirm(checkout=checkout, payment_method_id="pm_manual")
    subscription = Subscription.objects.get(checkout=checkout)
    with time_machine.travel(subscription.current_period_end + timedelta(seconds=1), tick=False):
        renewals.renewals_run()
        dunning.dunning_run()
    cycle = Order.objects.get(billing_reason="subscription_cycle")
    assert cycle.status == "paid"
    posted = LedgerTransaction.objects.get(idempotency_key=f"order:{cycle.pk}:paid")
    assert posted.created_at == cycle.paid_at
    assert LedgerTransaction.objects.filter(type="payment").count() == 2
    assert selectors.merchant_balance(manual_org, "usd") == 2 * (3000 - cycle.tax - cycle.platform_fee)
    assert reconcile() == []


@pytest.mark.django_db
def test_paid_order_splits_tax_platform_fee_and_merchant_share(org, customer):
    Organization.objects.filter(pk=org.pk).update(platform_fee_bps=1000, platform_fee_fixed=0)
    org.refresh_from_db()
    order = paid_order(org, customer, amount=10_000, tax=2_000)  # total 12,000, fee 1,200
    assert entries_of(order.ledger_transactions.get()) == {
        Kind.PROCESSOR_CASH: 12_000,
        Kind.TAX_PAYABLE: -2_000,
        Kind.PLATFORM_REVENUE: -1_200,
        Kind.MERCHANT_BALANCE: -8_800,
    }
    inclusive = paid_order(org, customer, amount=12_000, tax=2_000, currency="eur", tax_inclusive=True)
    assert entries_of(inclusive.ledger_transactions.get()) == {
        Kind.PROCESSOR_CASH: 12_000,
        Kind.TAX_PAYABLE: -2_000,
        Kind.PLATFORM_REVENUE: -1_200,
        Kind.MERCHANT_BALANCE: -8_800,
    }
    assert inclusive.ledger_transactions.get().entries.filter(currency="eur").count() == 4


@pytest.mark.django_db
def test_pending_and_free_orders_are_not_posted(org, customer):
    pending = order_create(
        organization=org, customer=customer, billing_reason="purchase", currency="usd",
        lines=[Line(label="x", amount=500)],
    )  # fmt: skip
    free = paid_order(org, customer, amount=0)
    assert ledger_post_order_paid(order=pending) is None
    assert ledger_post_order_paid(order=free) is None
    assert not LedgerTransaction.objects.exists()


@pytest.mark.django_db
def test_posting_twice_records_once(org, customer):
    order = paid_order(org, customer)
    first = order.ledger_transactions.get()
    again = ledger_post_order_paid(order=order)
    assert again.pk == first.pk
    assert LedgerTransaction.objects.count() == 1 and LedgerEntry.objects.count() == 3

    cash, merchant = account_for(Kind.PROCESSOR_CASH, currency="usd"), account_for(Kind.MERCHANT_BALANCE, org, currency="usd")  # fmt: skip
    one = ledger_post(type="balance_adjustment", organization=org, idempotency_key="adj:1", entries=[(cash, 5), (merchant, -5)])  # fmt: skip
    two = ledger_post(type="balance_adjustment", organization=org, idempotency_key="adj:1", entries=[(cash, 5), (merchant, -5)])  # fmt: skip
    assert one.pk == two.pk and one.entries.count() == 2


@pytest.mark.django_db
def test_account_for_is_get_or_create_with_null_owners(org, customer):
    platform = account_for(Kind.PLATFORM_REVENUE, currency="usd")
    assert account_for(Kind.PLATFORM_REVENUE, currency="usd").pk == platform.pk
    assert account_for(Kind.PLATFORM_REVENUE, currency="eur").pk != platform.pk
    wallet = account_for(Kind.CUSTOMER_WALLET, customer=customer, currency="usd")
    assert wallet.organization_id == org.pk
    assert account_for(Kind.CUSTOMER_WALLET, org, customer, currency="usd").pk == wallet.pk
    with pytest.raises(IntegrityError), transaction.atomic():  # NULL owners are not distinct
        LedgerAccount.objects.create(kind=Kind.PLATFORM_REVENUE, currency="usd")
    with pytest.raises(InvalidInput):
        account_for(Kind.CUSTOMER_WALLET, org, currency="usd")


# --- refused input ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_unbalanced_entries_are_refused_before_the_database(org):
    cash = account_for(Kind.PROCESSOR_CASH, currency="usd")
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    merchant_eur = account_for(Kind.MERCHANT_BALANCE, org, currency="eur")
    with pytest.raises(InvalidInput, match=r"sum to zero per currency; off by usd \+1"):
        ledger_post(
            type="payment", organization=org, idempotency_key="k1", entries=[(cash, 100), (merchant, -99)]
        )
    with pytest.raises(InvalidInput, match="eur -100, usd \\+100"):  # balanced in total, not per currency
        ledger_post(
            type="payment",
            organization=org,
            idempotency_key="k2",
            entries=[(cash, 100), (merchant_eur, -100)],
        )
    with pytest.raises(InvalidInput, match="at least one non-zero entry"):
        ledger_post(type="payment", organization=org, idempotency_key="k3", entries=[(cash, 0)])
    with pytest.raises(InvalidInput, match="int minor units"):
        ledger_post(
            type="payment", organization=org, idempotency_key="k4", entries=[(cash, 1.5), (merchant, -1.5)]
        )
    with pytest.raises(InvalidInput, match="unknown ledger transaction type"):
        ledger_post(type="gift", organization=org, idempotency_key="k5", entries=[(cash, 1), (merchant, -1)])
    assert not LedgerTransaction.objects.exists() and not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_raw_sql_cannot_update_or_delete_entries_or_transactions(org, customer):
    order = paid_order(org, customer)
    ledger_tx = order.ledger_transactions.get()
    entry = ledger_tx.entries.first()
    statements = [
        ("UPDATE ledger_ledgerentry SET amount = amount + 1 WHERE id = %s", entry.pk),
        ("UPDATE ledger_ledgerentry SET created_at = now() WHERE id = %s", entry.pk),
        ("DELETE FROM ledger_ledgerentry WHERE id = %s", entry.pk),
        ("DELETE FROM ledger_ledgertransaction WHERE id = %s", ledger_tx.pk),
        ("UPDATE ledger_ledgertransaction SET idempotency_key = 'x' WHERE id = %s", ledger_tx.pk),
    ]
    for sql, pk in statements:
        with (
            pytest.raises(IntegrityError, match=r"cannot be (updated|deleted)"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert LedgerEntry.objects.filter(transaction=ledger_tx).count() == 3
    assert sum(ledger_tx.entries.values_list("amount", flat=True)) == 0


@pytest.mark.django_db(transaction=True)
def test_raw_sql_unbalanced_transaction_is_refused_at_commit(org):
    account = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    with (
        pytest.raises(IntegrityError, match="does not balance: its usd entries sum to 500"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        raw_unbalanced(cursor, org, account)  # accepted until commit: entries come one by one
    with (
        pytest.raises(IntegrityError, match="has no entries"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO ledger_ledgertransaction (id, created_at, type, organization_id, "
            "idempotency_key, description) VALUES (gen_random_uuid(), now(), 'payment', %s, 'empty', '')",
            [org.pk],
        )
    assert not LedgerTransaction.objects.exists() and not LedgerEntry.objects.exists()


# --- balances ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_balances_are_the_sum_of_what_happened(org, make_org, customer):
    other = make_org("Other")
    other_customer = other.customers.create(email="o@example.com")
    t0 = START
    expected = {"usd": 0, "eur": 0}
    fees = {"usd": 0, "eur": 0}
    orders = []
    for day, (amount, tax, currency) in enumerate(
        [(1000, 0, "usd"), (2500, 500, "usd"), (999, 0, "eur"), (5000, 1000, "usd")]
    ):
        with time_machine.travel(t0 + timedelta(days=day), tick=False):
            order = paid_order(org, customer, amount=amount, tax=tax, currency=currency)
            orders.append(order)
            expected[currency] += order.total - order.tax - order.platform_fee
            fees[currency] += order.platform_fee
    with time_machine.travel(t0, tick=False):
        foreign = paid_order(other, other_customer, amount=7000)
    fees["usd"] += foreign.platform_fee

    assert selectors.merchant_balance(org, "usd") == expected["usd"]
    assert selectors.merchant_balance(org, "eur") == expected["eur"]
    assert selectors.merchant_balance(org, "gbp") == 0
    assert selectors.merchant_balance(other, "usd") == 7000 - foreign.platform_fee
    assert selectors.platform_revenue("usd") == fees["usd"]
    assert selectors.platform_revenue("eur") == fees["eur"]
    tax_account = account_for(Kind.TAX_PAYABLE, currency="usd")
    assert selectors.account_balance(tax_account) == -1500
    cash = account_for(Kind.PROCESSOR_CASH, currency="usd")
    assert selectors.account_balance(cash) == sum(o.total for o in orders if o.currency == "usd") + 7000

    # Available: money in counts once older than the hold (7 days); money out at once.
    assert org.payout_hold_days == 7
    share = [o.total - o.tax - o.platform_fee for o in orders]
    assert selectors.available_balance(org, "usd", t0 + timedelta(days=7)) == 0
    assert selectors.available_balance(org, "usd", t0 + timedelta(days=7, seconds=1)) == share[0]
    assert selectors.available_balance(org, "usd", t0 + timedelta(days=8, seconds=1)) == share[0] + share[1]
    assert selectors.available_balance(org, "usd", t0 + timedelta(days=30)) == expected["usd"]
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    with time_machine.travel(t0 + timedelta(days=8, hours=12), tick=False):
        ledger_post(
            type="balance_adjustment", organization=org, idempotency_key="adj:debit",
            entries=[(merchant, 300), (account_for(Kind.PLATFORM_REVENUE, currency="usd"), -300)],
        )  # fmt: skip
    assert (
        selectors.available_balance(org, "usd", t0 + timedelta(days=8, hours=13)) == share[0] + share[1] - 300
    )
    assert selectors.merchant_balance(org, "usd") == expected["usd"] - 300
    assert reconcile() == []


@pytest.mark.django_db
def test_running_balance_follows_entries_and_cannot_be_written(org, customer):
    from billing.ledger.models import LedgerBalance

    order = paid_order(org, customer, amount=4000)
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    slots = LedgerBalance.objects.filter(account=merchant)
    assert sum(slots.values_list("balance", flat=True)) == selectors.entries_sum(merchant)
    assert selectors.account_balance(merchant) == -(4000 - order.platform_fee)
    assert not LedgerBalance.objects.filter(account__organization__isnull=True).exists()  # platform: summed
    for sql in ["UPDATE ledger_ledgerbalance SET balance = 0", "DELETE FROM ledger_ledgerbalance"]:
        with (
            pytest.raises(IntegrityError, match="running balances cannot be"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    # A balance row inserted later starts from the entries, whatever it says.
    wallet = LedgerAccount.objects.create(
        kind=Kind.CUSTOMER_WALLET, organization=org, customer=customer, currency="usd"
    )
    ledger_post(
        type="wallet_credit", organization=org, idempotency_key="w:1",
        entries=[(wallet, -250), (merchant, 250)],
    )  # fmt: skip
    assert selectors.account_balance(wallet) == -250  # no row yet: summed
    assert LedgerBalance.objects.create(account=wallet, balance=999).balance == 999
    assert LedgerBalance.objects.get(account=wallet).balance == -250
    assert reconcile() == []


# --- backfill and reconciliation ---------------------------------------------------------------


def unposted_paid_order(org, customer, total=4000):
    return Order.objects.create(
        organization=org, customer=customer, status="paid", billing_reason="purchase", currency="usd",
        subtotal=total, net=total, total=total, due=total, platform_fee=100, paid_at=START,
    )  # fmt: skip


@pytest.mark.django_db
def test_backfill_posts_each_paid_order_once(org, customer, capsys):
    posted = paid_order(org, customer)
    old = [unposted_paid_order(org, customer), unposted_paid_order(org, customer, 2500)]
    Order.objects.create(
        organization=org, customer=customer, status="pending", billing_reason="purchase", currency="usd",
        subtotal=900, net=900, total=900, due=900,
    )  # fmt: skip
    call_command("ledger_backfill")
    assert "posted 2 paid order(s)" in capsys.readouterr().out
    for order in old:
        ledger_tx = order.ledger_transactions.get()
        assert ledger_tx.created_at == START  # dated when the order was paid
        assert entries_of(ledger_tx)[Kind.MERCHANT_BALANCE] == -(order.total - 100)
    call_command("ledger_backfill")
    assert "posted 0 paid order(s)" in capsys.readouterr().out
    assert LedgerTransaction.objects.count() == 3
    assert posted.ledger_transactions.count() == 1
    assert reconcile() == []


@pytest.mark.django_db
def test_reconciliation_finds_planted_discrepancies(org, customer, capsys):
    paid_order(org, customer)
    call_command("ledger_reconcile")
    assert "no discrepancies" in capsys.readouterr().out
    assert ReconciliationRun.objects.get().ok

    missing = unposted_paid_order(org, customer)
    # Plant what a disabled trigger or a restored dump could leave: the trigger is switched
    # off inside this test's transaction only (DDL is transactional; the test rolls back).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the checks pending so far (they pass)
        cursor.execute("ALTER TABLE ledger_ledgerentry DISABLE TRIGGER ledger_entry_balanced")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        account = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
        broken = raw_unbalanced(cursor, org, account, amount=-70)
    with pytest.raises(CommandError, match="3 ledger discrepancies"):
        call_command("ledger_reconcile")
    run = ReconciliationRun.objects.order_by("-id").first()
    assert not run.ok
    checks = {d["check"]: d for d in run.discrepancies}
    assert set(checks) == {
        "paid_order_without_posting",
        "transaction_unbalanced",
        "trial_balance_nonzero",
    }
    assert checks["paid_order_without_posting"]["order"] == str(missing.pk)
    assert checks["transaction_unbalanced"] == {
        "check": "transaction_unbalanced", "transaction": str(broken), "currency": "usd", "sum": -70,
    }  # fmt: skip
    assert checks["trial_balance_nonzero"]["sum"] == -70
    assert reconciliation_run().discrepancies == run.discrepancies


@pytest.mark.django_db
def test_reconciliation_task_is_scheduled_daily():
    from billing.ledger.tasks import reconcile_ledger
    from core.schedules import SCHEDULES

    (schedule,) = [s for s in SCHEDULES if s.task == "ledger.reconcile"]
    assert schedule.crontab and schedule.crontab.split()[1] != "*"
    assert reconcile_ledger.name == "ledger.reconcile"
    assert reconcile_ledger() is True
    assert ReconciliationRun.objects.get().ok
