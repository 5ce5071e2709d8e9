import django.db.models.deletion
from django.db import migrations, models

# An organization's running balance is striped over 8 rows per account (slot = a hash of
# the ledger transaction id), so two postings of one merchant (payments of different
# customers, refunds, wallet credits, adjustments) rarely wait on one row until the other
# commits. Customer-owned accounts (wallets) keep slot 0: the customer lock serializes them
# anyway, and a wallet read under that lock stays one exact row. An account's balance is
# the sum over its slots. Existing rows become slot 0 with their balance.
STRIPED_SQL = """
ALTER TABLE ledger_ledgerbalance ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE ledger_ledgerbalance ALTER COLUMN slot DROP DEFAULT;
ALTER TABLE ledger_ledgerbalance DROP CONSTRAINT ledger_ledgerbalance_pkey;
ALTER TABLE ledger_ledgerbalance ADD CONSTRAINT ledger_ledgerbalance_pkey PRIMARY KEY (account_id, slot);
ALTER TABLE ledger_ledgerbalance
    ADD CONSTRAINT ledger_balance_slot_range CHECK (slot >= 0 AND slot < 8);

-- Which slot a posting of an organization-owned account adds to. Any spread will do: the
-- balance is the sum over the slots, so the hash never needs to be stable across versions.
CREATE FUNCTION ledger_balance_slot(transaction_id uuid) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashtext(transaction_id::text) & 2147483647) % 8)::smallint $$;

-- One upsert per statement over the (account, slot) totals of the inserted rows, in
-- (account, slot) order: each row is locked (existing) or inserted (new slot, starting at
-- this posting's amount) in that order, so two postings never hold one row each and wait
-- for the other. Only accounts that keep a running balance (a row already) are touched;
-- platform accounts have none.
CREATE OR REPLACE FUNCTION ledger_balance_add_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_ledgerbalance AS b (account_id, slot, balance)
    SELECT s.account_id, s.slot, s.total
      FROM (SELECT e.account_id,
                   CASE WHEN a.customer_id IS NULL THEN ledger_balance_slot(e.transaction_id)
                        ELSE 0::smallint END AS slot,
                   SUM(e.amount) AS total
              FROM new_entries e
              JOIN ledger_ledgeraccount a ON a.id = e.account_id
             WHERE a.organization_id IS NOT NULL
             GROUP BY 1, 2) AS s
     WHERE EXISTS (SELECT 1 FROM ledger_ledgerbalance k WHERE k.account_id = s.account_id)
     ORDER BY s.account_id, s.slot
        ON CONFLICT (account_id, slot) DO UPDATE SET balance = b.balance + EXCLUDED.balance;
    RETURN NULL;
END
$$;

-- A row the entry trigger inserts (nested, depth > 1) holds exactly its posting's amount. A
-- row inserted directly holds the account's entries its other slots do not: all of them
-- for the account's first row, nothing for a further slot.
CREATE OR REPLACE FUNCTION ledger_balance_init() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    NEW.balance := COALESCE(
        (SELECT SUM(amount) FROM ledger_ledgerentry WHERE account_id = NEW.account_id), 0)
        - COALESCE(
        (SELECT SUM(balance) FROM ledger_ledgerbalance WHERE account_id = NEW.account_id), 0);
    RETURN NEW;
END
$$;
"""

UNSTRIPED_SQL = """
CREATE OR REPLACE FUNCTION ledger_balance_add_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ledger_ledgerbalance
     WHERE account_id IN (SELECT account_id FROM new_entries)
     ORDER BY account_id
       FOR NO KEY UPDATE;
    UPDATE ledger_ledgerbalance AS b
       SET balance = b.balance + s.total
      FROM (SELECT account_id, SUM(amount) AS total FROM new_entries GROUP BY account_id) AS s
     WHERE b.account_id = s.account_id;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION ledger_balance_init() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.balance := COALESCE(
        (SELECT SUM(amount) FROM ledger_ledgerentry WHERE account_id = NEW.account_id), 0);
    RETURN NEW;
END
$$;
DROP FUNCTION ledger_balance_slot(uuid);

-- Fold the slots back into one row per account.
ALTER TABLE ledger_ledgerbalance DISABLE TRIGGER ledger_balance_guard;
UPDATE ledger_ledgerbalance AS b
   SET balance = t.total
  FROM (SELECT account_id, SUM(balance) AS total FROM ledger_ledgerbalance GROUP BY account_id) AS t
 WHERE b.account_id = t.account_id AND b.slot = 0;
INSERT INTO ledger_ledgerbalance (account_id, slot, balance)
SELECT account_id, 0, 0 FROM ledger_ledgerbalance GROUP BY account_id HAVING bool_and(slot <> 0);
DELETE FROM ledger_ledgerbalance WHERE slot <> 0;
ALTER TABLE ledger_ledgerbalance ENABLE TRIGGER ledger_balance_guard;

ALTER TABLE ledger_ledgerbalance DROP CONSTRAINT ledger_balance_slot_range;
ALTER TABLE ledger_ledgerbalance DROP CONSTRAINT ledger_ledgerbalance_pkey;
ALTER TABLE ledger_ledgerbalance ADD CONSTRAINT ledger_ledgerbalance_pkey PRIMARY KEY (account_id);
ALTER TABLE ledger_ledgerbalance DROP COLUMN slot;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_invariantrun")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(STRIPED_SQL, UNSTRIPED_SQL)],
            state_operations=[
                migrations.AddField(
                    model_name="ledgerbalance",
                    name="slot",
                    field=models.SmallIntegerField(default=0),
                ),
                migrations.AlterField(
                    model_name="ledgerbalance",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="running_balances",
                        to="ledger.ledgeraccount",
                    ),
                ),
                migrations.AddField(
                    model_name="ledgerbalance",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "account", "slot", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                migrations.AddConstraint(
                    model_name="ledgerbalance",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("slot__gte", 0), ("slot__lt", 8)), name="ledger_balance_slot_range"
                    ),
                ),
            ],
        ),
    ]
