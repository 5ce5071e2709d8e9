"""``StripeProcessor``: the :class:`~billing.payments.processor.PaymentProcessor` on Stripe.

Built on stripe-python's ``StripeClient`` (``client.v1.*``). Conventions:

* Every mutating request carries the caller's ``idempotency_key`` unchanged, and every
  method makes at most one mutating request, so one business key never meets two
  endpoints.
* Responses are handled as plain dicts (``StripeObject.to_dict()``), so an expanded
  object and a bare id (``latest_charge`` is an object in localstripe and with
  ``expand``, a string otherwise) are told apart by type.
* A card decline is an outcome (``ChargeOutcome(status="failed")``), never an exception.
  Everything else Stripe refuses, or that does not reach Stripe, raises
  :class:`ProcessorError`; ``retryable`` says whether the same call may succeed later.
* Only ``card`` payment methods (``payment_method_types=["card"]``), so confirming never
  needs a ``return_url``; ``automatic_payment_methods`` is not used (localstripe rejects it).
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings

from billing.payments.processor import (
    LOOKUP_INCONCLUSIVE,
    BalanceInfo,
    ChargeOutcome,
    ChargeStatus,
    ConnectedAccount,
    PaymentMethodInfo,
    PayoutOutcome,
    ProcessorError,
    RefundOutcome,
    TransferOutcome,
)

logger = logging.getLogger(__name__)

PRODUCTION_NETWORK_RETRIES = 2
# payment_intent_find: list pages read before giving up, and seconds of clock skew allowed
# between Recur's created_at and Stripe's ``created``.
LOOKUP_MAX_PAGES = 20
LOOKUP_CLOCK_SLACK = 600
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
REFUND_STATUSES = frozenset({"pending", "succeeded", "failed", "canceled", "requires_action"})

# PaymentIntent.status -> ChargeStatus. ``requires_payment_method`` depends on whether an
# attempt failed (see _charge_outcome). ``requires_capture`` (authorized, not captured:
# Recur never asks for manual capture) is money not yet settled: "processing".
_PI_STATUS: dict[str, ChargeStatus] = {
    "succeeded": "succeeded",
    "processing": "processing",
    "requires_capture": "processing",
    "requires_action": "requires_action",
    "requires_confirmation": "requires_action",
    "canceled": "canceled",
}
# Statuses a confirm can move on; from any other status confirming is refused by Stripe,
# and the current state is the answer (a retried confirm whose first response was lost).
_CONFIRMABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


def _plain(obj: Any) -> dict[str, Any]:
    """A response (``StripeObject``) or nested value as a plain dict; ``{}`` for None/ids."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    if isinstance(obj, dict):
        return obj
    return {}


def _id_of(value: Any) -> str:
    """The id of a reference that may be a bare id or an expanded object."""
    if isinstance(value, str):
        return value
    return str(_plain(value).get("id") or "")


def _first(*values: Any) -> str:
    return next((str(v) for v in values if v), "")


def _strings(metadata: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in (metadata or {}).items()}


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _processor_error(exc: stripe.StripeError) -> ProcessorError:
    """Map a stripe-python exception (other than a charge decline) to ``ProcessorError``.

    Retryable: connection failures, rate limits, 409 (lock timeout, key in use) and 5xx;
    Stripe's ``Stripe-Should-Retry`` response header overrides the status-based guess.
    """
    status = exc.http_status or 0
    body = _error_body(exc)
    if isinstance(exc, stripe.APIConnectionError):
        retryable, default_code = True, "api_connection_error"
    elif isinstance(exc, stripe.RateLimitError):
        retryable, default_code = True, "rate_limit"
    else:
        retryable = status >= 500 or status == 409
        default_code = body.get("type") or ("api_error" if status >= 500 else "invalid_request_error")
        headers = exc.headers or {}
        should_retry = next((v for k, v in headers.items() if k.lower() == "stripe-should-retry"), None)
        if should_retry in ("true", "false"):
            retryable = should_retry == "true"
    code = _first(exc.code, body.get("code"), default_code)
    message = _first(body.get("message"), exc.user_message, str(exc), type(exc).__name__)
    return ProcessorError(f"Stripe: {message}", retryable=retryable, code=code)


def _charge_outcome(
    pi: dict[str, Any],
    *,
    charge: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    declined: bool = False,
) -> ChargeOutcome:
    """Map a PaymentIntent (plus the charge and a card error, when known) to ChargeOutcome."""
    error = error or {}
    latest = pi.get("latest_charge")
    if not latest:  # API versions before 2022-11-15 (and localstripe) also list ``charges``
        latest = (_plain(pi.get("charges")).get("data") or [None])[0]
    if isinstance(latest, dict | stripe.StripeObject):
        charge = _plain(latest)
    charge_id = _first(_id_of(latest), _id_of(charge), error.get("charge"))
    if charge and charge.get("id") != charge_id:
        charge = None
    charge = charge or {}
    charge_result = _plain(charge.get("outcome"))

    pi_status = pi.get("status") or ""
    last_error = _plain(pi.get("last_payment_error"))
    if declined:
        status: ChargeStatus = "failed"
    elif pi_status == "requires_payment_method":
        # After a failed attempt Stripe sends the intent back here with last_payment_error;
        # without one, it simply has no payment method yet: the customer must act.
        status = "failed" if last_error or charge.get("status") == "failed" else "requires_action"
    else:
        status = _PI_STATUS.get(pi_status, "processing")
        if pi_status not in _PI_STATUS:
            logger.warning("Unknown PaymentIntent status %r on %s", pi_status, pi.get("id"))

    decline_code = decline_message = ""
    if status == "failed":
        decline_code = _first(
            last_error.get("decline_code"),
            last_error.get("code"),
            charge_result.get("network_decline_code"),
            charge.get("failure_code"),
            error.get("decline_code"),
            error.get("code"),
        )
        decline_message = _first(
            last_error.get("message"), charge.get("failure_message"), error.get("message")
        )

    return ChargeOutcome(
        status=status,
        payment_intent_id=str(pi.get("id") or ""),
        charge_id=charge_id,
        decline_code=decline_code,
        decline_message=decline_message,
        risk_level=str(charge_result.get("risk_level") or ""),
        client_secret=str(pi.get("client_secret") or ""),
        amount_received=_amount_received(pi, charge) if status == "succeeded" else None,
        currency=str(pi.get("currency") or charge.get("currency") or "").lower(),
        raw=pi,
    )


def _refund_outcome(refund: dict[str, Any]) -> RefundOutcome:
    status = refund.get("status") or "pending"
    return RefundOutcome(
        refund_id=str(refund.get("id") or ""),
        status=status if status in REFUND_STATUSES else "pending",
        amount=int(refund.get("amount") or 0),
        currency=str(refund.get("currency") or ""),
        failure_reason=str(refund.get("failure_reason") or ""),
        payment_intent_id=_id_of(refund.get("payment_intent")),
        charge_id=_id_of(refund.get("charge")),
        metadata=_strings(_plain(refund.get("metadata"))),
    )


def _amount_received(pi: dict[str, Any], charge: dict[str, Any]) -> int | None:
    """What a succeeded intent collected: ``amount_received`` (real Stripe), else the charge's
    captured amount, else the intent's amount (localstripe has neither)."""
    for value in (pi.get("amount_received"), charge.get("amount_captured"), pi.get("amount")):
        if value is not None:
            return int(value)
    return None


def _card_info(pm: dict[str, Any]) -> PaymentMethodInfo:
    card = _plain(pm.get("card"))
    return PaymentMethodInfo(
        id=str(pm.get("id") or ""),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
    )


def _account(account: dict[str, Any]) -> ConnectedAccount:
    return ConnectedAccount(
        id=str(account.get("id") or ""),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
    )


class StripeProcessor:
    """``PaymentProcessor`` on Stripe.

    The client is built from settings when first needed and rebuilt whenever they change
    (so tests that move ``STRIPE_API_HOST`` are honoured): the secret key by
    ``STRIPE_LIVE_MODE``, and ``STRIPE_API_HOST`` as the API base when it is defined (only
    outside production, pointing at localstripe).

    ``max_network_retries``: stripe-python's own retries (same idempotency key, so safe
    on real Stripe). Default 2, but 0 when ``STRIPE_API_HOST`` is set: localstripe ignores
    Idempotency-Key, so a retried POST there would create a second object.
    ``http_client``: a ``stripe.HTTPClient`` (tests record or answer requests with it).
    """

    name = "stripe"

    def __init__(
        self, *, max_network_retries: int | None = None, http_client: stripe.HTTPClient | None = None
    ):
        self._max_network_retries = max_network_retries
        self._http_client = http_client
        self._client: stripe.StripeClient | None = None
        self._client_config: tuple[Any, ...] | None = None

    # -- plumbing ---------------------------------------------------------------------

    def _stripe(self) -> stripe.StripeClient:
        live = bool(getattr(settings, "STRIPE_LIVE_MODE", False))
        api_key = getattr(settings, "STRIPE_LIVE_SECRET_KEY" if live else "STRIPE_TEST_SECRET_KEY", "")
        if not api_key:
            raise ProcessorError(
                f"No Stripe {'live' if live else 'test'} secret key is configured", code="not_configured"
            )
        api_host = getattr(settings, "STRIPE_API_HOST", None) or None
        retries = self._max_network_retries
        if retries is None:
            retries = 0 if api_host else PRODUCTION_NETWORK_RETRIES
        config = (api_key, api_host, retries)
        if self._client is None or self._client_config != config:
            self._client = stripe.StripeClient(
                api_key,
                base_addresses={"api": api_host} if api_host else None,
                max_network_retries=retries,
                http_client=self._http_client,
            )
            self._client_config = config
        return self._client

    @staticmethod
    def _options(idempotency_key: str, **extra: Any) -> dict[str, Any]:
        if not idempotency_key:
            raise ValueError("every mutating Stripe call needs an idempotency_key")
        return {"idempotency_key": idempotency_key, **extra}

    def _declined(
        self, client: stripe.StripeClient, exc: stripe.CardError, payment_intent_id: str = ""
    ) -> ChargeOutcome:
        """The outcome of a payment attempt that Stripe answered with a card error (402).

        Real Stripe embeds the PaymentIntent in the error; localstripe gives only the
        charge id, so the intent is found through the charge. The intent is then read
        again (with its charge expanded) for the decline details and the risk level.
        """
        error = _error_body(exc)
        embedded = error.get("payment_intent")
        pi_id = _id_of(embedded) or payment_intent_id
        charge_id = str(error.get("charge") or "")
        pi: dict[str, Any] = _plain(embedded)
        charge: dict[str, Any] | None = None
        try:
            if not pi_id and charge_id:
                charge = _plain(client.v1.charges.retrieve(charge_id))
                pi_id = _id_of(charge.get("payment_intent"))
            if pi_id:
                pi = _plain(client.v1.payment_intents.retrieve(pi_id, {"expand": ["latest_charge"]}))
        except stripe.StripeError as lookup_exc:
            logger.warning("Could not read back declined payment (charge %s): %s", charge_id, lookup_exc)
            if not pi_id:
                # Same call, same idempotency key: Stripe replays the decline, we look again.
                raise _processor_error(lookup_exc) from exc
        if not pi_id:
            raise ProcessorError(
                f"Stripe: card error without a payment intent: {_first(error.get('message'), str(exc))}",
                code=_first(error.get("decline_code"), exc.code, "card_declined"),
            )
        pi = {**pi, "id": pi_id}
        return _charge_outcome(pi, charge=charge, error=error, declined=True)

    # -- customers and payment methods ------------------------------------------------

    def customer_upsert(
        self,
        *,
        processor_customer_id: str | None,
        email: str,
        name: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str:
        params: dict[str, Any] = {"metadata": _strings(metadata)}
        # Empty values are left out: Stripe reads "" as "unset this field".
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        client = self._stripe()
        options = self._options(idempotency_key)
        try:
            if processor_customer_id:
                customer = client.v1.customers.update(processor_customer_id, params, options)
            else:
                customer = client.v1.customers.create(params, options)
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return customer.id

    def payment_method_attach(
        self, *, processor_customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> PaymentMethodInfo:
        client = self._stripe()
        try:
            pm = client.v1.payment_methods.attach(
                payment_method_id, {"customer": processor_customer_id}, self._options(idempotency_key)
            )
        except stripe.CardError as exc:
            # Stripe can verify a card when attaching it; there is no outcome type for
            # that, so it is an error that a retry will not fix.
            error = _error_body(exc)
            raise ProcessorError(
                f"Stripe: card declined when attached: {_first(error.get('message'), str(exc))}",
                retryable=False,
                code=_first(error.get("decline_code"), exc.code, "card_declined"),
            ) from exc
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _card_info(_plain(pm))

    def payment_method_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        client = self._stripe()
        try:
            client.v1.payment_methods.detach(payment_method_id, None, self._options(idempotency_key))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc

    # -- payments ---------------------------------------------------------------------

    def payment_intent_create(
        self,
        *,
        amount: int,
        currency: str,
        processor_customer_id: str | None,
        payment_method_id: str | None,
        off_session: bool,
        confirm: bool,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str = "",
    ) -> ChargeOutcome:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "payment_method_types": ["card"],
            "metadata": _strings(metadata),
            "expand": ["latest_charge"],
        }
        if processor_customer_id:
            params["customer"] = processor_customer_id
        if payment_method_id:
            params["payment_method"] = payment_method_id
        if description:
            params["description"] = description
        if confirm:
            params["confirm"] = True
            if off_session:  # Stripe accepts off_session only together with confirm=true
                params["off_session"] = True
        client = self._stripe()
        try:
            pi = client.v1.payment_intents.create(params, self._options(idempotency_key))
        except stripe.CardError as exc:
            return self._declined(client, exc)
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _charge_outcome(_plain(pi))

    def payment_intent_confirm(
        self, *, payment_intent_id: str, payment_method_id: str | None, idempotency_key: str
    ) -> ChargeOutcome:
        client = self._stripe()
        try:
            current = _plain(
                client.v1.payment_intents.retrieve(payment_intent_id, {"expand": ["latest_charge"]})
            )
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        if current.get("status") not in _CONFIRMABLE:
            return _charge_outcome(current)

        params: dict[str, Any] = {"expand": ["latest_charge"]}
        # Only name a payment method that changes something (localstripe cannot take one here).
        if payment_method_id and payment_method_id != _id_of(current.get("payment_method")):
            params["payment_method"] = payment_method_id
        try:
            pi = client.v1.payment_intents.confirm(payment_intent_id, params, self._options(idempotency_key))
        except stripe.CardError as exc:
            return self._declined(client, exc, payment_intent_id)
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _charge_outcome(_plain(pi))

    def payment_intent_retrieve(self, *, payment_intent_id: str) -> ChargeOutcome:
        client = self._stripe()
        try:
            pi = client.v1.payment_intents.retrieve(payment_intent_id, {"expand": ["latest_charge"]})
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _charge_outcome(_plain(pi))

    def payment_intent_find(
        self, *, recur_payment_id: str, processor_customer_id: str | None, created_after: datetime
    ) -> ChargeOutcome | None:
        """Listing is strongly consistent (search is not: it lags by up to a minute or more), so
        an absence is proven only by a list: the customer's intents created since the attempt
        (localstripe filters nothing: every intent it holds). Without a customer the search can
        find an intent but never prove there is none."""
        client = self._stripe()
        local = bool(getattr(settings, "STRIPE_API_HOST", None))
        params: dict[str, Any] = {"limit": 100}
        if not local:
            if not processor_customer_id:
                return self._search_by_metadata(client, recur_payment_id)
            params["customer"] = processor_customer_id
            params["created"] = {"gte": int(created_after.timestamp()) - LOOKUP_CLOCK_SLACK}
        # localstripe lists every intent it ever held, oldest first: read them all there.
        pages = itertools.count() if local else range(LOOKUP_MAX_PAGES)
        try:
            for _ in pages:
                page = _plain(client.v1.payment_intents.list(params))
                intents = page.get("data") or []
                for pi in intents:
                    if (_plain(pi.get("metadata")).get("recur_payment_id") or "") == recur_payment_id:
                        return self.payment_intent_retrieve(payment_intent_id=str(pi["id"]))
                if not page.get("has_more") or not intents:
                    return None
                params["starting_after"] = intents[-1]["id"]
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        raise ProcessorError("Stripe: too many PaymentIntents to prove absence", code=LOOKUP_INCONCLUSIVE)

    def _search_by_metadata(self, client: stripe.StripeClient, recur_payment_id: str) -> ChargeOutcome:
        query = f"metadata['recur_payment_id']:'{recur_payment_id}'"
        try:
            found = _plain(client.v1.payment_intents.search({"query": query, "limit": 1})).get("data") or []
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        if found:
            return self.payment_intent_retrieve(payment_intent_id=str(found[0]["id"]))
        raise ProcessorError("Stripe: search cannot prove a PaymentIntent absent", code=LOOKUP_INCONCLUSIVE)

    def refund_create(
        self,
        *,
        payment_intent_id: str,
        amount: int | None,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "metadata": _strings(metadata)}
        if amount is not None:
            params["amount"] = amount
        if reason in REFUND_REASONS:  # anything else stays in our records only
            params["reason"] = reason
        client = self._stripe()
        try:
            refund = _plain(client.v1.refunds.create(params, self._options(idempotency_key)))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _refund_outcome(refund)

    def refund_retrieve(self, *, refund_id: str) -> RefundOutcome:
        try:
            refund = _plain(self._stripe().v1.refunds.retrieve(refund_id))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _refund_outcome(refund)

    def refund_find(self, *, payment_intent_id: str, metadata: dict[str, str]) -> RefundOutcome | None:
        wanted = _strings(metadata)
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "limit": 100}
        client = self._stripe()
        try:
            while True:
                page = _plain(client.v1.refunds.list(params))
                refunds = [_plain(item) for item in page.get("data") or []]
                for refund in refunds:
                    found = _plain(refund.get("metadata"))
                    if all(str(found.get(key)) == value for key, value in wanted.items()):
                        return _refund_outcome(refund)
                if not page.get("has_more") or not refunds:
                    return None
                params["starting_after"] = refunds[-1]["id"]
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc

    def balance_transaction_for_charge(self, *, charge_id: str) -> BalanceInfo | None:
        client = self._stripe()
        try:
            charge = _plain(client.v1.charges.retrieve(charge_id, {"expand": ["balance_transaction"]}))
            txn = charge.get("balance_transaction")
            if not txn:
                return None  # not settled yet (pending, failed, or an async method)
            if isinstance(txn, str):  # expansion not honoured
                txn = client.v1.balance_transactions.retrieve(txn)
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        txn = _plain(txn)
        amount, fee = int(txn.get("amount") or 0), int(txn.get("fee") or 0)
        net = txn.get("net")
        return BalanceInfo(
            id=str(txn.get("id") or ""),
            amount=amount,
            fee=fee,
            net=int(net) if net is not None else amount - fee,
            currency=str(txn.get("currency") or ""),
        )

    # -- Connect ----------------------------------------------------------------------

    def connected_account_create(self, *, country: str, email: str, idempotency_key: str) -> ConnectedAccount:
        params: dict[str, Any] = {
            "type": "express",
            "country": country.upper(),
            "email": email,
            # Recur sends money to the account and the account pays it out: transfers only.
            "capabilities": {"transfers": {"requested": True}},
        }
        client = self._stripe()
        try:
            account = client.v1.accounts.create(params, self._options(idempotency_key))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _account(_plain(account))

    def connected_account_retrieve(self, *, account_id: str) -> ConnectedAccount:
        client = self._stripe()
        try:
            account = client.v1.accounts.retrieve(account_id)
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return _account(_plain(account))

    def transfer_create(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str, metadata: dict[str, str]
    ) -> TransferOutcome:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "destination": destination,
            "metadata": _strings(metadata),
        }
        client = self._stripe()
        try:
            transfer = _plain(client.v1.transfers.create(params, self._options(idempotency_key)))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return TransferOutcome(
            transfer_id=str(transfer.get("id") or ""),
            amount=int(transfer.get("amount") or 0),
            currency=str(transfer.get("currency") or ""),
        )

    def payout_create(
        self,
        *,
        amount: int,
        currency: str,
        connected_account_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> PayoutOutcome:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "metadata": _strings(metadata),
        }
        client = self._stripe()
        # From the connected account's balance to its bank: made as that account.
        options = self._options(idempotency_key, stripe_account=connected_account_id)
        try:
            payout = _plain(client.v1.payouts.create(params, options))
        except stripe.StripeError as exc:
            raise _processor_error(exc) from exc
        return PayoutOutcome(
            payout_id=str(payout.get("id") or ""),
            status=str(payout.get("status") or ""),
            amount=int(payout.get("amount") or 0),
            currency=str(payout.get("currency") or ""),
        )
