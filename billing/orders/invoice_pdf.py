"""The PDF invoice of an order (fpdf2).

Core fonts only (Helvetica), so nothing is downloaded or shipped: they cover Windows-1252
(latin-1 plus the euro sign, dashes, curly quotes...). :func:`_pdf_text` folds anything else to its
closest Windows-1252 form ("ő" -> "o") or "?", so any name renders without an error.

The output is deterministic: the PDF's creation date (and with it the file /ID) comes from
the order's issue date, never from the clock, so the same order gives the same bytes.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from fpdf import FPDF, FontFace
from fpdf.enums import Align, TableBordersLayout, XPos, YPos

from billing.money import format_amount
from billing.tax import reverse_charge_note, tax_label

__all__ = ["render_invoice_pdf"]

_ENCODING = "windows-1252"
_LOCALE = "en_US"
_FONT = "Helvetica"
_MUTED = (100, 100, 100)
_BLACK = (0, 0, 0)

_STATUS_LABELS = {
    "pending": "Open",
    "paid": "Paid",
    "partially_refunded": "Partially refunded",
    "refunded": "Refunded",
    "void": "Void",
}
# Letters that have no Unicode decomposition to a Windows-1252 base letter.
_FOLD = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "\u0131": "i", "ŀ": "l", "Ŀ": "L"}
)


def _pdf_text(value: object, *, multiline: bool = False) -> str:
    """``value`` as text the core fonts can draw: Windows-1252 only, no control characters."""
    out: list[str] = []
    for char in unicodedata.normalize("NFC", "" if value is None else str(value)).translate(_FOLD):
        if char == "\n" and multiline:
            out.append(char)
            continue
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"}:
            out.append(" ")
            continue
        for candidate in (char, unicodedata.normalize("NFKD", char)):
            base = "".join(c for c in candidate if not unicodedata.combining(c))
            try:
                base.encode(_ENCODING)
            except UnicodeEncodeError:
                continue
            if base:
                out.append(base)
                break
        else:
            out.append("?")
    return "".join(out)


def _date(value: datetime) -> str:
    return format_date(value.astimezone(UTC).date(), format="long", locale=_LOCALE)


def _period(start: datetime | None, end: datetime | None) -> str:
    if start and end:
        return f"{_date(start)} \u2013 {_date(end)}"  # en dash
    if start:
        return f"From {_date(start)}"
    return ""


def _percent(bps: int) -> str:
    text = format(Decimal(bps).scaleb(-2).normalize(), "f")
    return f"{text}%"


def _address_lines(address: dict | None) -> list[str]:
    if not address:
        return []
    get = lambda key: str(address.get(key) or "").strip()  # noqa: E731
    lines = [get("line1"), get("line2")]
    city_line = " ".join(part for part in (get("postal_code"), get("city")) if part)
    if get("state"):
        city_line = f"{city_line}, {get('state')}" if city_line else get("state")
    lines.append(city_line)
    country = get("country").upper()
    if country:
        lines.append(Locale.parse(_LOCALE).territories.get(country, country))
    return [line for line in lines if line]


class _InvoicePDF(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(_FONT, size=8)
        self.set_text_color(*_MUTED)
        self.cell(0, 5, f"{self.footer_text}    Page {self.page_no()} of {{nb}}", align=Align.R)


def render_invoice_pdf(order, *, compress: bool = True) -> bytes:
    """The invoice (a draft when ``order.invoice_number`` is None) as PDF bytes.

    ``compress=False`` leaves the page streams readable, for tests and debugging.
    """
    organization = order.organization
    customer = order.customer
    currency = order.currency

    def money(amount: int) -> str:
        return _pdf_text(format_amount(amount, currency, _LOCALE))

    number = order.invoice_number or "DRAFT"
    issued_at = order.paid_at or order.created_at
    address = order.billing_address or customer.billing_address or {}
    country = str(address.get("country") or "")
    state = str(address.get("state") or "")
    tax_id = order.customer_tax_id or customer.tax_id

    pdf = _InvoicePDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_compression(compress)
    pdf.set_creation_date(issued_at)
    pdf.set_title(_pdf_text(f"Invoice {number}"))
    pdf.set_author(_pdf_text(organization.name))
    pdf.set_creator("Recur")
    pdf.set_lang("en")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.footer_text = _pdf_text(f"{organization.name} · {number}")
    pdf.add_page()
    width = pdf.epw

    # Heading: title on the left, seller on the right.
    pdf.set_font(_FONT, "B", 22)
    pdf.cell(width / 2, 10, "Invoice" if order.invoice_number else "Draft invoice")
    pdf.set_font(_FONT, "B", 12)
    pdf.cell(width / 2, 10, _pdf_text(organization.name), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=10)
    pdf.set_text_color(*_MUTED)
    pdf.cell(0, 5, _pdf_text(organization.email), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*_BLACK)
    pdf.ln(4)

    # Invoice facts.
    facts = [
        ("Invoice number", number),
        ("Date of issue", _date(issued_at)),
        ("Status", _STATUS_LABELS.get(order.status, order.status)),
    ]
    period = _period(order.period_start, order.period_end)
    if period:
        facts.append(("Billing period", period))
    for label, value in facts:
        pdf.set_font(_FONT, "B", 10)
        pdf.cell(38, 6, label)
        pdf.set_font(_FONT, size=10)
        pdf.cell(0, 6, _pdf_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    # Bill to.
    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 6, "Bill to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=10)
    bill_to = [order.billing_name or customer.name, customer.email, *_address_lines(address)]
    if tax_id:
        bill_to.append(f"Tax ID: {tax_id}")
    for line in bill_to:
        if line:
            pdf.multi_cell(width / 2, 5, _pdf_text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    # Line items.
    pdf.set_font(_FONT, size=10)
    with pdf.table(
        col_widths=(64, 12, 24),
        text_align=(Align.L, Align.R, Align.R),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD"),
        line_height=5,
        padding=(1.2, 1),
    ) as table:
        heading = table.row()
        for title in ("Description", "Qty", "Amount"):
            heading.cell(title)
        for item in order.items.all():
            description = item.label
            item_period = _period(item.period_start, item.period_end)
            if item_period:
                description = f"{description}\n{item_period}"
            row = table.row()
            row.cell(_pdf_text(description, multiline=True))
            row.cell(str(item.quantity))
            row.cell(money(item.amount))
    pdf.ln(4)

    # Totals.
    rows: list[tuple[str, str, bool]] = [("Subtotal", money(order.subtotal), False)]
    if order.discount_amount:
        name = f"Discount ({order.discount.name})" if order.discount_id else "Discount"
        rows.append((name, money(-order.discount_amount), False))
    label = tax_label(country, state) if (order.tax_rate_bps or order.reverse_charge) else "Tax"
    if order.reverse_charge:
        rows.append((f"{label} (reverse charge)", money(order.tax), False))
    elif order.tax_inclusive:
        rate = f" {_percent(order.tax_rate_bps)}" if order.tax_rate_bps else ""
        rows.append((f"{label}{rate} (included)", money(order.tax), False))
    else:
        rate = f" {_percent(order.tax_rate_bps)}" if order.tax_rate_bps else ""
        rows.append((f"{label}{rate}", money(order.tax), False))
    rows.append(("Total", money(order.total), True))
    balance = order.applied_balance - order.carried_forward
    if balance > 0:
        rows.append(("Applied balance", money(-balance), False))
    elif balance < 0:
        rows.append(("Balance carried from earlier invoices", money(-balance), False))
    if order.carried_forward:
        rows.append(
            ("Below the minimum charge: carried to your next invoice", money(-order.carried_forward), False)
        )
    rows.append(("Amount paid" if order.is_paid else "Amount due", money(order.due), True))
    if order.refunded_amount:
        rows.append(("Refunded", money(order.refunded_amount), False))

    label_width, amount_width = 60.0, 36.0
    for text, amount, bold in rows:
        pdf.set_x(pdf.l_margin + width - label_width - amount_width)
        pdf.set_font(_FONT, "B" if bold else "", 10)
        pdf.cell(label_width, 6, _pdf_text(text))
        pdf.cell(amount_width, 6, amount, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    # Notes.
    notes = []
    if order.reverse_charge:
        notes.append(
            reverse_charge_note(country) or "Reverse charge: tax to be accounted for by the recipient"
        )
    if order.tax_inclusive and order.tax:
        notes.append("Prices include tax.")
    if notes:
        pdf.ln(6)
        pdf.set_font(_FONT, size=9)
        pdf.set_text_color(*_MUTED)
        for note in notes:
            pdf.multi_cell(0, 5, _pdf_text(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*_BLACK)

    return bytes(pdf.output())
