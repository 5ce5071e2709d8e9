import re
from datetime import UTC, datetime

import pytest

from billing.orders.invoice_pdf import _pdf_text, render_invoice_pdf
from billing.orders.models import BillingReason, Order, OrderItem

PAID_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def make_order(org, customer):
    def make(items=(("Pro plan", 10000, 1, None),), **fields):
        subtotal = sum(amount for _, amount, _, _ in items)
        discount = fields.pop("discount_amount", 0)
        tax = fields.pop("tax", 0)
        inclusive = fields.pop("tax_inclusive", False)
        net = subtotal - discount
        total = net if inclusive else net + tax
        applied = fields.pop("applied_balance", 0)
        values = {
            "organization": org,
            "customer": customer,
            "billing_reason": BillingReason.PURCHASE,
            "status": Order.Status.PAID,
            "invoice_number": "ACME-0001",
            "currency": "usd",
            "subtotal": subtotal,
            "discount_amount": discount,
            "net": net,
            "tax": tax,
            "tax_inclusive": inclusive,
            "total": total,
            "applied_balance": applied,
            "due": max(0, total - applied),
            "paid_at": PAID_AT,
            **fields,
        }
        order = Order.objects.create(**values)
        for label, amount, quantity, period in items:
            OrderItem.objects.create(
                order=order,
                label=label,
                amount=amount,
                quantity=quantity,
                period_start=period[0] if period else None,
                period_end=period[1] if period else None,
            )
        return order

    return make


def text_of(pdf: bytes) -> str:
    """The strings drawn on the pages of an uncompressed PDF, joined by newlines."""
    content = pdf.decode("latin-1")
    strings = re.findall(r"\(((?:[^()\\]|\\.)*)\)\s*Tj", content)
    unescaped = [re.sub(r"\\(.)", r"\1", s) for s in strings]
    return "\n".join(unescaped)


def test_renders_a_pdf(make_order):
    order = make_order()
    pdf = render_invoice_pdf(order)
    assert pdf.startswith(b"%PDF")
    assert pdf.rstrip().endswith(b"%%EOF")


def test_contents(make_order, customer):
    customer.billing_address = {
        "line1": "1 rue de Rivoli",
        "line2": "",
        "city": "Paris",
        "state": "",
        "postal_code": "75001",
        "country": "FR",
    }
    customer.save()
    order = make_order(
        items=[
            ("Pro plan", 12000, 1, (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 2, 5, tzinfo=UTC))),
            ("Extra seats", 3000, 3, None),
        ],
        discount_amount=1500,
        tax=2700,
        tax_rate_bps=2000,
        applied_balance=700,
        refunded_amount=1000,
        status=Order.Status.PARTIALLY_REFUNDED,
        billing_name="Acme Buyer SAS",
        customer_tax_id="FR40303265045",
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    for expected in [
        "Invoice",
        "ACME-0001",
        "Acme",  # seller
        "January 5, 2026",
        "Partially refunded",
        "Acme Buyer SAS",
        "buyer@example.com",
        "1 rue de Rivoli",
        "75001 Paris",
        "France",
        "Tax ID: FR40303265045",
        "Pro plan",
        "January 5, 2026 \x96 February 5, 2026",  # en dash in Windows-1252
        "Extra seats",
        "$120.00",
        "$30.00",
        "Subtotal",
        "$150.00",
        "-$15.00",
        "VAT 20%",
        "$27.00",
        "Total",
        "$162.00",
        "Applied balance",
        "-$7.00",
        "Amount paid",
        "$155.00",
        "Refunded",
        "$10.00",
    ]:
        assert expected in text, expected
    assert re.search(r"Page 1 of\s*1", text)


def test_organization_email_and_draft(make_order, org):
    org.email = "billing@acme.test"
    org.save()
    order = make_order(invoice_number=None, status=Order.Status.PENDING, paid_at=None)
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "billing@acme.test" in text
    assert "DRAFT" in text
    assert "Draft invoice" in text
    assert "Open" in text
    assert "Amount due" in text
    assert "Refunded" not in text and "Discount" not in text and "Applied balance" not in text


def test_issue_date_falls_back_to_created_at(make_order):
    order = make_order(paid_at=None, status=Order.Status.PENDING)
    order.created_at = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    order.save()
    assert "December 31, 2025" in text_of(render_invoice_pdf(order, compress=False))


def test_tax_inclusive(make_order):
    order = make_order(
        items=[("Pro plan", 12000, 1, None)],
        currency="eur",
        tax=2000,
        tax_rate_bps=2000,
        tax_inclusive=True,
        billing_address={"country": "DE"},
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "VAT 20% (included)" in text
    assert "\x80120.00" in text  # the euro sign is Windows-1252 0x80
    assert "\x8020.00" in text
    assert "Prices include tax." in text


def test_reverse_charge(make_order):
    order = make_order(
        currency="eur",
        reverse_charge=True,
        billing_address={"country": "FR"},
        customer_tax_id="FR40303265045",
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "VAT (reverse charge)" in text
    assert "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)" in text


def test_fractional_rate_and_other_currencies(make_order):
    order = make_order(
        items=[("Plan", 1234, 1, None)],
        currency="kwd",
        tax=247,
        tax_rate_bps=2550,
        billing_address={"country": "FI"},
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "VAT 25.5%" in text
    assert "KWD1.234" in text and "KWD1.481" in text

    order = make_order(
        items=[("Plan", 5000, 1, None)],
        currency="jpy",
        tax=500,
        tax_rate_bps=1000,
        invoice_number="ACME-0002",
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "\xa55,000" in text and "\xa55,500" in text  # yen sign


def test_negative_proration_line(make_order):
    order = make_order(
        items=[("Unused time on Basic", -2500, 1, None), ("Remaining time on Pro", 6000, 1, None)]
    )
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "-$25.00" in text and "$60.00" in text and "$35.00" in text


def test_non_latin_names_do_not_crash(make_order, org, customer):
    org.name = "Łódź Software 株式会社"
    org.save()
    customer.name = "Zoë Ørsted 李"
    customer.billing_address = {"line1": "Straße 1", "city": "Köln", "country": "DE", "state": "NRW"}
    customer.save()
    order = make_order(items=[("Plan “Pro” — 🚀 launch", 1000, 1, None)], billing_name="")
    pdf = render_invoice_pdf(order)
    assert pdf.startswith(b"%PDF")
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "Zoë Ørsted ?".encode("cp1252").decode("latin-1") in text
    assert "Lódz Software ????".encode("cp1252").decode("latin-1") in text
    assert "Köln, NRW".encode("cp1252").decode("latin-1") in text


def test_pdf_text():
    assert _pdf_text("Zoë Ørsted 李") == "Zoë Ørsted ?"
    assert _pdf_text("€ \u2013 “x”") == "€ \u2013 “x”"
    assert _pdf_text("ő Łł ﬁ Жー") == "o Ll fi ??"
    assert _pdf_text("a\nb\tc") == "a b c"
    assert _pdf_text("a\nb", multiline=True) == "a\nb"
    assert _pdf_text(None) == ""


def test_deterministic(make_order):
    order = make_order(tax=2000, tax_rate_bps=2000, billing_address={"country": "FR"})
    first = render_invoice_pdf(order)
    assert render_invoice_pdf(Order.objects.get(pk=order.pk)) == first
    assert render_invoice_pdf(order, compress=False) == render_invoice_pdf(order, compress=False)


def test_many_items_break_pages(make_order):
    items = [(f"Usage line {n}", 100, 1, None) for n in range(80)]
    order = make_order(items=items)
    text = text_of(render_invoice_pdf(order, compress=False))
    assert "Usage line 79" in text
    assert re.search(r"Page 2 of\s*\d", text)
