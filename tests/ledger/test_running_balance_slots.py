"""A merchant's running balance is striped over slots, so postings of one organization do not
queue on one row; every reader sums the slots, and the sum stays the sum of the entries."""

import threading
import uuid
from collections import defaultdict

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models.signals import pre_save

from accounts.models import Customer
from billing.ledger import selectors
from billing.ledger.models import LedgerAccount, LedgerBalance, LedgerEntry, LedgerTransaction
from billing.ledger.postings import ledger_post_balance_adjustment, ledger_post_wallet_credit
from billing.ledger.reconciliation import reconcile
from billing.ledger.services import account_for
from billing.ledger.wallet import wallet_balances, wallet_funded_customers, wallet_lock_available
from billing.orders.services import Line, order_create

Kind = LedgerAccount.Kind
SLOTS = LedgerBalance.SLOTS


def slot_of(transaction_id) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ledger_balance_slot(%s)", [transaction_id])
        return cursor.fetchone()[0]


def slots(account) -> dict[int, int]:
    return dict(LedgerBalance.objects.filter(account=account).values_list("slot", "balance"))


def adjust(org, n: int, amount: int = 100):
    return ledger_post_balance_adjustment(
        organization=org, amount=amount, currency="usd", idempotency_key=f"adj:{n}", description=""
    )


@pytest.mark.django_db
def test_a_merchants_postings_spread_over_slots_that_sum_to_its_entries(org, customer):
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    posted = [adjust(org, n, amount=100 + n) for n in range(40)]
    expected: dict[int, int] = defaultdict(int)
    for ledger_tx in posted:
        expected[slot_of(ledger_tx.pk)] += ledger_tx.entries.get(account=merchant).amount
    rows = slots(merchant)
    assert 1 < len(rows) <= SLOTS  # 40 postings over 8 slots: spread, never more than 8 rows
    # Each slot holds exactly the postings whose transaction hashes to it (slot 0: created at 0).
    assert {slot: total for slot, total in rows.items() if total} == expected
    total = sum(100 + n for n in range(40))
    assert selectors.account_balance(merchant) == selectors.entries_sum(merchant) == -total
    assert selectors.merchant_balance(org, "usd") == total
    (row,) = selectors.organization_balances(org, merchant.created_at)
    assert row["balance"] == total
    assert reconcile() == []


@pytest.mark.django_db
def test_a_wallet_keeps_one_exact_row_read_by_every_wallet_reader(org, customer):
    wallet = account_for(Kind.CUSTOMER_WALLET, org, customer, currency="usd")
    for n in range(12):
        ledger_post_wallet_credit(customer=customer, amount=50, currency="usd", idempotency_key=f"w:{n}")
    assert slots(wallet) == {0: -600}
    assert selectors.wallet_balance(customer, "usd") == 600
    assert [(b.currency, b.balance) for b in wallet_balances(customer)] == [("usd", 600)]
    assert wallet_funded_customers([customer.pk]) == {(customer.pk, "usd")}
    with transaction.atomic():
        assert wallet_lock_available([(customer.pk, "usd")]) == {(customer.pk, "usd"): 600}
    ledger_post_wallet_credit(customer=customer, amount=-600, currency="usd", idempotency_key="w:out")
    assert wallet_funded_customers([customer.pk]) == set()
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    assert sum(slots(merchant).values()) == selectors.entries_sum(merchant) == 0
    assert reconcile() == []


@pytest.mark.django_db
def test_slot_rows_keep_the_guard_the_init_and_the_range(org):
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    for n in range(4):  # four postings use at most four of the eight slots: one stays free
        adjust(org, n, amount=500)
    used = slots(merchant)
    for sql in ["UPDATE ledger_ledgerbalance SET balance = 0", "DELETE FROM ledger_ledgerbalance"]:
        with (
            pytest.raises(IntegrityError, match="running balances cannot be"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    # A further slot inserted by hand starts at 0 whatever it says: the sum stays the entries.
    free = next(slot for slot in range(SLOTS) if slot not in used)
    assert LedgerBalance.objects.create(account=merchant, slot=free, balance=999).balance == 999
    assert slots(merchant)[free] == 0
    assert selectors.merchant_balance(org, "usd") == 2000
    for slot in (-1, SLOTS):
        with pytest.raises(IntegrityError, match="ledger_balance_slot_range"), transaction.atomic():
            LedgerBalance.objects.create(account=merchant, slot=slot)
    # A bulk insert of many transactions (one statement) lands each on its own slot.
    cash = account_for(Kind.PROCESSOR_CASH, currency="usd")
    with transaction.atomic():
        many = LedgerTransaction.objects.bulk_create(
            LedgerTransaction(type="payment", organization=org, idempotency_key=f"bulk:{n}")
            for n in range(30)
        )
        LedgerEntry.objects.bulk_create(
            LedgerEntry(transaction=t, account=account, amount=amount, currency="usd")
            for t in many
            for account, amount in ((merchant, -10), (cash, 10))
        )
    assert selectors.merchant_balance(org, "usd") == 2300 == -sum(slots(merchant).values())
    assert reconcile() == []


@pytest.mark.django_db
def test_reconciliation_catches_a_slot_that_drifted(org):
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    for n in range(10):
        adjust(org, n)
    slot = max(slots(merchant))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events before ALTER TABLE
        cursor.execute("ALTER TABLE ledger_ledgerbalance DISABLE TRIGGER ledger_balance_guard")
        cursor.execute(
            "UPDATE ledger_ledgerbalance SET balance = balance + 1 WHERE account_id = %s AND slot = %s",
            [merchant.pk, slot],
        )
        cursor.execute("ALTER TABLE ledger_ledgerbalance ENABLE TRIGGER ledger_balance_guard")
    (finding,) = [d for d in reconcile() if d["check"] == "running_balance_mismatch"]
    assert finding == {
        "check": "running_balance_mismatch",
        "account": str(merchant.pk),
        "balance": -999,
        "entries_sum": -1000,
    }


# --- two connections: unrelated postings of one merchant do not wait -------------------------


@pytest.fixture
def ids_by_slot(db):
    """Ledger transaction ids by the slot they hash to, and a hook that gives each new
    transaction of a type an id of the slot asked for (``wanted[type] = slot``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, ledger_balance_slot(id) FROM (SELECT gen_random_uuid() AS id "
            "FROM generate_series(1, 400)) AS ids"
        )
        pool: dict[int, list[uuid.UUID]] = defaultdict(list)
        for transaction_id, slot in cursor.fetchall():
            pool[slot].append(transaction_id)
    wanted: dict[str, int] = {}
    lock = threading.Lock()

    def choose_id(sender, instance, raw=False, **kwargs):
        if not raw and instance._state.adding and instance.type in wanted:
            with lock:
                instance.id = pool[wanted[instance.type]].pop()

    pre_save.connect(choose_id, sender=LedgerTransaction, dispatch_uid="ids_by_slot")
    yield wanted
    pre_save.disconnect(sender=LedgerTransaction, dispatch_uid="ids_by_slot")


def _hold_adjustment(org, held: threading.Event, release: threading.Event, outcome: dict):
    try:
        with transaction.atomic():
            outcome["tx"] = adjust(org, 0, amount=700)
            held.set()
            release.wait(timeout=30)
    except BaseException as exc:  # reported to the test
        outcome["error"] = exc
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_a_posting_held_open_does_not_hold_up_another_posting_of_its_merchant(org, ids_by_slot):
    others = [Customer.objects.create(organization=org, email=f"other{n}@example.com") for n in range(2)]
    merchant = account_for(Kind.MERCHANT_BALANCE, org, currency="usd")
    for kind, owner in [(Kind.PROCESSOR_CASH, None), (Kind.TAX_PAYABLE, None), (Kind.PLATFORM_REVENUE, None)]:
        account_for(kind, owner, currency="usd")
    account_for(Kind.CUSTOMER_WALLET, org, others[1], currency="usd")
    ids_by_slot.update(balance_adjustment=3, payment=5, wallet_credit=6)

    held, release, outcome = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=_hold_adjustment, args=(org, held, release, outcome))
    thread.start()
    try:
        assert held.wait(timeout=10), outcome
        # While A's adjustment is uncommitted (its slot row locked), B's postings commit.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            order = order_create(
                organization=org, customer=others[0], billing_reason="purchase", currency="usd",
                lines=[Line(label="Thing", amount=1500)], paid=True,
            )  # fmt: skip
            ledger_post_wallet_credit(customer=others[1], amount=200, currency="usd", idempotency_key="w:b")
        assert thread.is_alive() and not release.is_set()  # A still open when B committed
        # The same slot does wait: the stripes are what lets B through.
        ids_by_slot["balance_adjustment"] = 3
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            adjust(org, 1)
    finally:
        release.set()
        thread.join(timeout=30)
    assert "error" not in outcome, outcome
    merchant_share = order.total - order.tax - order.platform_fee
    assert selectors.merchant_balance(org, "usd") == 700 + merchant_share - 200
    assert slots(merchant)[3] == -700
    assert slots(merchant)[5] == -merchant_share
    assert reconcile() == []
