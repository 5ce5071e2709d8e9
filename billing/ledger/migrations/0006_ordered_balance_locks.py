from django.db import migrations

# The running-balance trigger locks the balance rows of a posting in account id order
# before adding to them (core.locks): one UPDATE ... FROM over a grouped set updates rows in
# whatever order the plan yields, so two postings over the same two accounts could each hold
# one row and wait for the other.
ORDERED_SQL = """
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
"""

UNORDERED_SQL = """
CREATE OR REPLACE FUNCTION ledger_balance_add_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_ledgerbalance AS b
       SET balance = b.balance + s.total
      FROM (SELECT account_id, SUM(amount) AS total FROM new_entries GROUP BY account_id) AS s
     WHERE b.account_id = s.account_id;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_dispute_fee_reversal")]

    operations = [migrations.RunSQL(ORDERED_SQL, UNORDERED_SQL)]
