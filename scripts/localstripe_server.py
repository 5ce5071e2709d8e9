"""Start localstripe with its store where we say, or nowhere.

Stock localstripe 1.15 pickles its whole store to the hard-coded
/tmp/localstripe.pickle after every write (even with --from-scratch), shared by
every instance on the machine. Recur's development server keeps its store in its
own file, written atomically; the test fixture keeps none at all. Charges' balance
transactions carry Stripe's standard card fee (stock localstripe records 0), and refunds
accept Stripe's ``reason``.

    python scripts/localstripe_server.py --port 8420 --store ~/.local/state/recur/localstripe.pickle
    python scripts/localstripe_server.py --port 0 --no-store      # tests
"""

import argparse
import os
import pickle
import sys

from localstripe import resources
from localstripe.server import start


def use_store(path: str | None) -> None:
    assert hasattr(resources.Store, "dump_to_disk"), "localstripe changed: Store.dump_to_disk"
    assert hasattr(resources.Store, "try_load_from_disk"), "localstripe changed: Store.try_load_from_disk"

    def load(self):
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        self.clear()
        self.update(old)

    def dump(self):
        if path is None:
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


# Stripe's standard card pricing (2.9% + 30 minor units). Stock localstripe records every
# balance transaction with fee 0, which would leave Recur's processor-fee posting untested.
CARD_FEE_BPS, CARD_FEE_FIXED = 290, 30


def charge_card_fees() -> None:
    original = resources.BalanceTransaction.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.type == "charge" and self.amount > 0:
            self.fee = (self.amount * CARD_FEE_BPS + 5000) // 10000 + CARD_FEE_FIXED  # half-up
            self.fee_details = [
                {"amount": self.fee, "currency": self.currency, "type": "stripe_fee",
                 "description": "Stripe processing fees", "application": None}
            ]  # fmt: skip

    resources.BalanceTransaction.__init__ = init


REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def accept_refund_reasons() -> None:
    """Stock localstripe refuses Stripe's ``reason`` parameter on refunds; keep it instead."""
    original = resources.Refund.__init__

    def init(self, *args, reason=None, **kwargs):
        if reason is not None and reason not in REFUND_REASONS:
            raise resources.UserError(400, "Invalid reason")
        original(self, *args, **kwargs)
        self.reason = reason

    resources.Refund.__init__ = init


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="pickle file for the store")
    parser.add_argument("--no-store", action="store_true", help="keep the store in memory only")
    parser.add_argument(
        "--webhook", nargs=2, metavar=("URL", "SECRET"), help="send every event, signed, to URL"
    )
    args, rest = parser.parse_known_args()
    if not args.no_store and not args.store:
        parser.error("give --store PATH or --no-store")
    if args.store:
        os.makedirs(os.path.dirname(os.path.abspath(args.store)), exist_ok=True)
    use_store(None if args.no_store else args.store)
    charge_card_fees()
    accept_refund_reasons()
    if args.webhook:
        from localstripe.webhooks import register_webhook

        register_webhook("recur", args.webhook[0], args.webhook[1], None)
    sys.argv = ["localstripe", *rest]
    sys.exit(start())


if __name__ == "__main__":
    main()
