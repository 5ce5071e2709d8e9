"""Backoffice for the ledger: transactions (read-only, with their entries), a merchant's
statement (opening balance, every movement with its running balance, closing balance,
totals per type; CSV export), reconciliation and invariant runs, and their dashboard cards.

Nothing here writes: postings come from services, and the database refuses edits anyway.
"""

import csv
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import slugify

from accounts.models import Organization
from billing.ledger import selectors
from billing.ledger.models import (
    InvariantRun,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    ReconciliationRun,
)
from billing.ledger.reconciliation import last_reconciliation
from billing.ledger.reconciliation.invariants import INVARIANTS, RUN_EVERY, last_invariant_run
from billing.money import Money, format_amount, is_supported_currency
from billing.orders.admin import currency_totals_metric, link_to, when_field
from core import clock
from core.admin import ReadOnlyAdmin
from core.backoffice.dashboard import CardItem, Metric, dashboard
from core.backoffice.display import badge, pretty_json, when
from core.backoffice.search import parse_uuid
from core.backoffice.timeline import admin_change_url, order_label

Kind = LedgerAccount.Kind
STATEMENT_PAGE_ROWS = 500  # the page shows this many lines; the CSV has every one


def money(amount: int, currency: str) -> str:
    return format_amount(amount, currency) if currency else str(amount)


def _merchant_entries(field: str):
    return LedgerEntry.objects.filter(transaction=OuterRef("pk"), account__kind=Kind.MERCHANT_BALANCE).values(
        field
    )[:1]


# --- dashboard -----------------------------------------------------------------------------


@dashboard.card(
    "reconciliation", title="Ledger reconciliation", order=60, permission="ledger.view_reconciliationrun"
)
def reconciliation_card(request) -> Metric:
    run = last_reconciliation()
    if run is None:
        return Metric(
            "never run", hint="manage.py ledger_reconcile, or the daily job", tone="warn",
            url=reverse("admin:ledger_reconciliationrun_changelist"),
        )  # fmt: skip
    url = reverse("admin:ledger_reconciliationrun_change", args=[run.pk])
    hint = f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if run.ok:
        return Metric("OK", hint=f"no discrepancies · {hint}", url=url, tone="good")
    count = len(run.discrepancies)
    return Metric(f"{count:,} discrepanc{'y' if count == 1 else 'ies'}", hint=hint, url=url, tone="bad")


@dashboard.card("invariants", title="Invariants", order=61, permission="ledger.view_invariantrun")
def invariants_card(request) -> Metric:
    """Green when every invariant held at the last run; otherwise the failing ones, each
    linking to its row on the run's page. A run older than two intervals means beat or the
    workers stopped: the result is stale."""
    run = last_invariant_run()
    if run is None:
        return Metric(
            "never run", hint="the 10-minute job, or manage.py ledger_reconcile", tone="warn",
            url=reverse("admin:ledger_invariantrun_changelist"),
        )  # fmt: skip
    url = reverse("admin:ledger_invariantrun_change", args=[run.pk])
    hint = f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    stale = run.started_at < clock.now() - 2 * RUN_EVERY
    if stale:
        hint += " · stale: the job has not run since"
    failing = run.failing
    if not failing:
        return Metric(f"all {len(run.results)} hold", hint=hint, url=url, tone="warn" if stale else "good")
    items = tuple(
        CardItem(f"{result['title']}: {result['count']:,}" if not result.get("error") else
                 f"{result['title']}: could not be checked", url=f"{url}#check-{result['name']}")
        for result in failing
    )  # fmt: skip
    return Metric(f"{len(failing)} failing", hint=hint, url=url, tone="bad", items=items)


@dashboard.card(
    "platform_revenue_30d",
    title="Platform revenue · 30 days",
    order=35,
    permission="ledger.view_ledgertransaction",
)
def platform_revenue_card(request) -> Metric:
    since = clock.now() - timedelta(days=30)
    url = reverse("admin:ledger_ledgertransaction_changelist") + "?" + urlencode({"type__exact": "payment"})
    return currency_totals_metric(selectors.platform_revenue_since(since), hint="platform fees", url=url)


# --- transactions ----------------------------------------------------------------------------


def _link_or_dash(app_label: str, model_name: str, pk) -> str:
    return link_to(app_label, model_name, pk, pk) if pk else "—"


class OrganizationFilter(admin.SimpleListFilter):
    """Filter by one organization (linked from the organization page and the statement);
    lists only the chosen one, never every merchant."""

    title = "organization"
    parameter_name = "organization"

    def lookups(self, request, model_admin):
        found = parse_uuid(self.value() or "")
        org = Organization.objects.filter(pk=found).first() if found else None
        return [(str(org.pk), org.name)] if org else []

    def queryset(self, request, queryset):
        found = parse_uuid(self.value() or "")
        if self.value() and found is None:
            return queryset.none()
        return queryset.filter(organization_id=found) if found else queryset


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("account_display", "debit", "credit", "currency")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="account")
    def account_display(self, entry: LedgerEntry):
        account = entry.account
        owner = "platform"
        if account.customer_id:
            owner = link_to("accounts", "customer", account.customer_id, "customer")
        elif account.organization_id:
            owner = link_to("accounts", "organization", account.organization_id, "merchant")
        return format_html("{} <span class='bo-quiet'>({})</span>", account.kind, owner)

    @admin.display(description="debit")
    def debit(self, entry: LedgerEntry):
        return format_amount(entry.amount, entry.currency) if entry.amount > 0 else ""

    @admin.display(description="credit")
    def credit(self, entry: LedgerEntry):
        return format_amount(-entry.amount, entry.currency) if entry.amount < 0 else ""


class StatementForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())
    currency = forms.CharField(
        max_length=3, required=False, help_text="Default: the organization's currency."
    )
    start = forms.DateField(
        label="From", help_text="Inclusive, UTC.", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", help_text="Inclusive, UTC.", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        field = LedgerTransaction._meta.get_field("organization")
        widget = AutocompleteSelect(field, admin_site)
        widget.choices = self.fields["organization"].choices
        self.fields["organization"].widget = widget

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().lower()
        if currency and not is_supported_currency(currency):
            raise forms.ValidationError("Unknown currency.", code="invalid_currency")
        return currency

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", forms.ValidationError("The end date is before the start.", code="invalid"))
        if not data.get("currency") and data.get("organization"):
            data["currency"] = data["organization"].default_currency
        return data

    def window(self) -> tuple[datetime, datetime]:
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        return (
            datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
        )


class _Echo:
    """A file-like object whose write returns the line (csv.writer into a stream)."""

    def write(self, value: str) -> str:
        return value


def statement_csv_rows(statement: selectors.Statement):
    """The statement as CSV rows: the opening balance, one row per line, the closing balance.
    Amounts in major units (a decimal string) beside the currency."""
    cur = statement.currency

    def dec(amount: int) -> str:
        return str(Money(amount, cur).to_decimal())

    yield ["date", "type", "description", "transaction_id", "order_id", "invoice_number", "amount",
           "balance", "currency"]  # fmt: skip
    yield [statement.start.isoformat(), "opening_balance", "Opening balance", "", "", "", "",
           dec(statement.opening), cur]  # fmt: skip
    for line in statement.lines():
        ledger_tx = line.transaction
        order = ledger_tx.order
        yield [
            ledger_tx.created_at.astimezone(UTC).isoformat(),
            ledger_tx.type,
            ledger_tx.description,
            str(ledger_tx.pk),
            str(order.pk) if order else "",
            (order.invoice_number or "") if order else "",
            dec(line.amount),
            dec(line.balance),
            cur,
        ]
    yield [statement.end.isoformat(), "closing_balance", "Closing balance", "", "", "", "",
           dec(statement.closing), cur]  # fmt: skip


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    change_list_template = "backoffice/ledger/ledgertransaction_change_list.html"
    list_display = ("created", "type", "organization", "order_link", "merchant_amount", "description")
    list_display_links = ("created",)
    list_filter = ("type", ("created_at", admin.DateFieldListFilter), OrganizationFilter)
    list_select_related = ("organization", "order")
    search_fields = ("idempotency_key",)
    search_help_text = (
        "A transaction, order, payment, refund, dispute or organization id, or an idempotency key (exact)."
    )
    show_full_result_count = False
    list_per_page = 50
    inlines = [LedgerEntryInline]
    fields = (
        "type", "organization", "order_link", "payment_link", "refund_link", "dispute_link",
        "customer_link", "description", "idempotency_key", "id", "created",
    )  # fmt: skip
    readonly_fields = fields

    created = when_field("created_at", "created")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                merchant_entry=Subquery(_merchant_entries("amount")),
                merchant_currency=Subquery(_merchant_entries("currency")),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = parse_uuid(term)
        if found is None:
            return queryset.filter(idempotency_key=term), False
        # One index lookup each (primary key and the foreign keys' indexes).
        match = (
            queryset.filter(pk=found)
            | queryset.filter(order_id=found)
            | queryset.filter(payment_id=found)
            | queryset.filter(refund_id=found)
            | queryset.filter(dispute_id=found)
            | queryset.filter(organization_id=found)
        )
        return match, False

    def get_urls(self):
        return [
            path(
                "statement/",
                self.admin_site.admin_view(self.statement_view),
                name="ledger_statement",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"statement_url": reverse("admin:ledger_statement"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    # --- statement

    def statement_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        initial = self._statement_defaults(request)
        bound = any(request.GET.get(name) for name in ("organization", "currency", "start", "end"))
        data = None
        if bound:  # a link with just the organization shows this month's statement
            data = request.GET.copy()
            for name, value in initial.items():
                if not data.get(name):
                    data[name] = value.isoformat()
        form = StatementForm(data, initial=initial, admin_site=self.admin_site)
        statement = None
        if bound and form.is_valid():
            start, end = form.window()
            statement = selectors.merchant_statement(
                form.cleaned_data["organization"], form.cleaned_data["currency"], start, end
            )
            if request.GET.get("format") == "csv":
                return self._statement_csv(statement)
        context = {
            **self.admin_site.each_context(request),
            "title": "Merchant statement",
            "opts": self.model._meta,
            "form": form,
            "media": self.media + form.media,
            "statement": statement,
        }
        if statement is not None:
            context.update(self._statement_context(request, statement))
        return TemplateResponse(request, "backoffice/ledger/statement.html", context)

    @staticmethod
    def _statement_defaults(request) -> dict:
        today = clock.now().astimezone(UTC).date()
        return {"start": date(today.year, today.month, 1), "end": today}

    def _statement_context(self, request, statement: selectors.Statement) -> dict:
        cur = statement.currency
        lines = []
        for line in statement.lines(limit=STATEMENT_PAGE_ROWS):
            ledger_tx = line.transaction
            order = ledger_tx.order
            lines.append(
                {
                    "when": when(ledger_tx.created_at),
                    "type": ledger_tx.get_type_display(),
                    "type_code": ledger_tx.type,
                    "description": ledger_tx.description,
                    "url": admin_change_url("ledger", "ledgertransaction", ledger_tx.pk),
                    "order": order_label(order) if order else "",
                    "order_url": admin_change_url("orders", "order", order.pk) if order else None,
                    "amount": money(line.amount, cur),
                    "amount_raw": line.amount,
                    "balance": money(line.balance, cur),
                }
            )
        query = request.GET.copy()
        query["format"] = "csv"
        return {
            "lines": lines,
            "truncated": statement.count > len(lines),
            "page_rows": STATEMENT_PAGE_ROWS,
            "opening": money(statement.opening, cur),
            "closing": money(statement.closing, cur),
            "net": money(statement.closing - statement.opening, cur),
            "totals": [
                (LedgerTransaction.Type(type).label, money(total, cur))
                for type, total in statement.totals.items()
            ],
            "csv_url": f"{request.path}?{query.urlencode()}",
            "org_url": admin_change_url("accounts", "organization", statement.organization.pk),
            "transactions_url": reverse("admin:ledger_ledgertransaction_changelist")
            + "?"
            + urlencode({"organization": str(statement.organization.pk)}),
            "end_inclusive": (statement.end - timedelta(days=1)).date(),
        }

    @staticmethod
    def _statement_csv(statement: selectors.Statement) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in statement_csv_rows(statement)), content_type="text/csv"
        )
        end = (statement.end - timedelta(days=1)).date()
        name = f"statement-{slugify(statement.organization.name) or statement.organization.pk}-"
        name += f"{statement.currency}-{statement.start.date()}-{end}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    # --- columns and fields

    @admin.display(description="order")
    def order_link(self, ledger_tx: LedgerTransaction):
        if ledger_tx.order_id is None:
            return "—"
        return link_to("orders", "order", ledger_tx.order_id, order_label(ledger_tx.order))

    @admin.display(description="merchant amount")
    def merchant_amount(self, ledger_tx: LedgerTransaction):
        amount = getattr(ledger_tx, "merchant_entry", None)
        if amount is None:
            return format_html('<span class="bo-quiet">{}</span>', "—")
        return format_html(
            '<span style="white-space: nowrap">{}</span>', format_amount(-amount, ledger_tx.merchant_currency)
        )

    @admin.display(description="payment")
    def payment_link(self, ledger_tx: LedgerTransaction):
        return _link_or_dash("payments", "payment", ledger_tx.payment_id)

    @admin.display(description="refund")
    def refund_link(self, ledger_tx: LedgerTransaction):
        return _link_or_dash("refunds", "refund", ledger_tx.refund_id)

    @admin.display(description="dispute")
    def dispute_link(self, ledger_tx: LedgerTransaction):
        return _link_or_dash("disputes", "dispute", ledger_tx.dispute_id)

    @admin.display(description="customer")
    def customer_link(self, ledger_tx: LedgerTransaction):
        return _link_or_dash("accounts", "customer", ledger_tx.customer_id)


# --- reconciliation runs ---------------------------------------------------------------------


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("started", "result", "discrepancy_count", "duration")
    list_display_links = ("started",)
    list_filter = ("ok", ("started_at", admin.DateFieldListFilter))
    list_per_page = 50
    show_full_result_count = False
    fields = ("started", "result", "duration", "discrepancy_table", "raw")
    readonly_fields = fields

    started = when_field("started_at", "started")

    @admin.display(description="result", ordering="ok")
    def result(self, run: ReconciliationRun):
        return badge("ok", "good") if run.ok else badge("discrepancies", "bad")

    @admin.display(description="discrepancies")
    def discrepancy_count(self, run: ReconciliationRun) -> int:
        return len(run.discrepancies)

    @admin.display(description="took")
    def duration(self, run: ReconciliationRun) -> str:
        if run.finished_at is None:
            return "—"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"

    @admin.display(description="discrepancies")
    def discrepancy_table(self, run: ReconciliationRun):
        if not run.discrepancies:
            return format_html('<span class="bo-empty">{}</span>', "None: the ledger reconciles.")
        rows = format_html_join(
            "",
            "<tr><td class='bo-mono'>{}</td><td>{}</td></tr>",
            (
                (
                    item.get("check", "?"),
                    ", ".join(f"{k}={v}" for k, v in sorted(item.items()) if k != "check"),
                )
                for item in run.discrepancies
            ),
        )
        return format_html(
            "<table class='bo-table'><thead><tr><th>check</th><th>details</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="raw")
    def raw(self, run: ReconciliationRun):
        return pretty_json(run.discrepancies)


# --- invariant runs ----------------------------------------------------------------------------


def _example_links(result: dict):
    app_label, _, model_name = (result.get("model") or "").partition(".")
    links = []
    for pk in result.get("examples") or []:
        url = admin_change_url(app_label, model_name, pk) if model_name else None
        links.append(format_html('<a class="bo-mono" href="{}">{}</a>', url, pk) if url else pk)
    more = result.get("count", 0) - len(links)
    if more > 0:
        links.append(f"and {more:,} more")
    return format_html_join(", ", "{}", ((link,) for link in links)) if links else "—"


@admin.register(InvariantRun)
class InvariantRunAdmin(ReadOnlyAdmin):
    list_display = ("started", "result", "failing_checks", "duration")
    list_display_links = ("started",)
    list_filter = ("ok", ("started_at", admin.DateFieldListFilter))
    list_per_page = 50
    show_full_result_count = False
    fields = ("started", "result", "duration", "results_table", "raw")
    readonly_fields = fields

    started = when_field("started_at", "started")

    @admin.display(description="result", ordering="ok")
    def result(self, run: InvariantRun):
        return badge("all hold", "good") if run.ok else badge(f"{len(run.failing)} failing", "bad")

    @admin.display(description="failing")
    def failing_checks(self, run: InvariantRun) -> str:
        return ", ".join(result["name"] for result in run.failing) or "—"

    @admin.display(description="took")
    def duration(self, run: InvariantRun) -> str:
        if run.finished_at is None:
            return "—"
        return f"{(run.finished_at - run.started_at).total_seconds():.2f} s"

    @admin.display(description="checks")
    def results_table(self, run: InvariantRun):
        def status(result):
            if result.get("error"):
                return badge("error", "bad")
            return badge("holds", "good") if result.get("ok") else badge("fails", "bad")

        def grace(name):
            check = INVARIANTS.get(name)
            return str(check.grace) if check is not None and check.grace else "—"

        rows = format_html_join(
            "",
            "<tr id='check-{}'><td>{}<div class='bo-quiet bo-mono'>{}</div></td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td><td class='bo-quiet'>{}</td></tr>",
            (
                (
                    result["name"], result.get("title", ""), result["name"], status(result),
                    f"{result.get('count', 0):,}", _example_links(result),
                    result.get("error") or result.get("note") or "", grace(result["name"]),
                )
                for result in run.results
            ),
        )  # fmt: skip
        return format_html(
            "<table class='bo-table'><thead><tr><th>invariant</th><th>status</th><th>rows</th>"
            "<th>examples</th><th>note</th><th>grace</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="raw")
    def raw(self, run: InvariantRun):
        return pretty_json(run.results)
