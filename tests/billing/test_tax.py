from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import UnknownCurrency
from billing.tax import (
    EU_VAT_RATES,
    BuiltinTaxEngine,
    TaxEngine,
    TaxQuery,
    TaxResult,
    get_tax_engine,
    reverse_charge_note,
    tax_id_validate,
    tax_label,
)

engine = BuiltinTaxEngine()
EU_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
VALID_FR_VAT = "FR40303265045"
VALID_DE_VAT = "DE136695976"
VALID_GR_VAT = "EL094259216"
VALID_GB_VAT = "GB980780684"


def calc(amount, country, *, currency="eur", inclusive=False, **kwargs) -> TaxResult:
    return engine.calculate(TaxQuery(amount, currency, inclusive, country, **kwargs))


# --- math ---------------------------------------------------------------------------
def test_exclusive():
    result = calc(10000, "FR")
    assert (result.rate_bps, result.tax, result.inclusive, result.reverse_charge) == (
        2000,
        2000,
        False,
        False,
    )
    assert result.jurisdiction == "FR"
    assert result.label == "VAT"
    assert result.rate == Decimal("20")


def test_inclusive():
    result = calc(12000, "FR", inclusive=True)
    assert (result.tax, result.inclusive) == (2000, True)


def test_inclusive_rounds_half_up():
    # 999 - 999 / 1.19 = 159.504... -> 160
    assert calc(999, "DE", inclusive=True).tax == 160
    # 9 - 9 / 1.2 = 1.5 exactly -> 2 (half up, not to even)
    assert calc(9, "FR", inclusive=True).tax == 2
    assert calc(115, "NZ", currency="nzd", inclusive=True).tax == 15  # exact


def test_exclusive_rounds_half_up():
    assert calc(50, "NZ", currency="nzd").tax == 8  # 7.5
    assert calc(10, "SE", currency="sek").tax == 3  # 2.5, not 2


def test_exclusive_rounding():
    assert calc(1, "FR").tax == 0  # 0.2
    assert calc(3, "FR").tax == 1  # 0.6
    assert calc(999, "DE").tax == 190  # 189.81


def test_zero_decimal_currency():
    result = calc(1000, "JP", currency="jpy")
    assert (result.tax, result.rate_bps, result.label) == (100, 1000, "JCT")
    assert calc(1100, "JP", currency="jpy", inclusive=True).tax == 100
    assert calc(999, "JP", currency="jpy").tax == 100  # 99.9


def test_three_decimal_currency():
    # 12.345 KWD taxed in France: 2.469 KWD
    assert calc(12345, "FR", currency="kwd").tax == 2469
    # inclusive: 12345 * 0.2 / 1.2 = 2057.5 -> 2058
    assert calc(12345, "FR", currency="kwd", inclusive=True).tax == 2058


def test_zero_amount():
    assert calc(0, "FR").tax == 0
    assert calc(0, "FR", inclusive=True).tax == 0


def test_credit_is_symmetric():
    assert calc(-999, "DE", inclusive=True).tax == -160
    assert calc(-25, "FR").tax == -calc(25, "FR").tax == -5


def test_unknown_currency():
    with pytest.raises(UnknownCurrency):
        calc(100, "FR", currency="xxx_")


def test_amount_must_be_int():
    with pytest.raises(TypeError):
        calc(Decimal("1.5"), "FR")
    with pytest.raises(TypeError):
        calc(True, "FR")


# --- the table ----------------------------------------------------------------------
def test_all_eu_member_states():
    assert len(EU_VAT_RATES) == 27
    expected = {
        "FR": 2000,
        "DE": 1900,
        "IE": 2300,
        "HU": 2700,
        "LU": 1700,
        "FI": 2550,
        "RO": 2100,
        "EE": 2400,
        "SK": 2300,
    }
    for country, bps in expected.items():
        assert calc(10000, country).rate_bps == bps, country
    for country in EU_VAT_RATES:
        result = calc(10000, country)
        assert result.tax > 0 and result.label == "VAT" and result.note == ""


@pytest.mark.parametrize(
    "country,bps,label",
    [
        ("GB", 2000, "VAT"),
        ("NO", 2500, "VAT"),
        ("CH", 810, "VAT"),
        ("IS", 2400, "VAT"),
        ("AU", 1000, "GST"),
        ("NZ", 1500, "GST"),
        ("SG", 900, "GST"),
        ("IN", 1800, "GST"),
    ],
)
def test_other_countries(country, bps, label):
    result = calc(10000, country)
    assert (result.rate_bps, result.tax, result.label, result.jurisdiction) == (bps, bps, label, country)


def test_country_is_normalized():
    assert calc(10000, " fr ").jurisdiction == "FR"
    assert calc(10000, "UK").jurisdiction == "GB"
    assert calc(10000, "EL").jurisdiction == "GR"


def test_canada_hst_province():
    result = calc(10000, "CA", currency="cad", state="ON")
    assert (result.jurisdiction, result.rate_bps, result.tax, result.label) == ("CA-ON", 1300, 1300, "HST")
    assert calc(10000, "CA", currency="cad", state="NS").tax == 1400


def test_quebec_gst_and_qst_exact_rate():
    result = calc(10000, "CA", currency="cad", state="QC")
    assert result.rate == Decimal("14.975")
    assert result.tax == 1498  # 1497.5 -> half up
    assert result.rate_bps == 1498  # display only
    assert [(c.name, c.rate, c.tax) for c in result.components] == [
        ("GST", Decimal("5"), 500),
        ("QST", Decimal("9.975"), 998),
    ]
    # The exact rate, not rate_bps: 1000.00 at 14.975% is 149.75, at 14.98% it would be 149.80.
    assert calc(100000, "CA", currency="cad", state="QC").tax == 14975
    odd = calc(333, "CA", currency="cad", state="CA-QC")
    assert odd.tax == 50  # 49.86675
    assert sum(c.tax for c in odd.components) == odd.tax


def test_canada_without_province_charges_gst():
    result = calc(10000, "CA", currency="cad")
    assert (result.jurisdiction, result.tax) == ("CA", 500)
    assert "Province unknown" in result.note


def test_us_state():
    result = calc(10000, "US", currency="usd", state="NY")
    assert (result.jurisdiction, result.rate_bps, result.tax, result.label) == (
        "US-NY",
        400,
        400,
        "Sales tax",
    )
    assert calc(10000, "US", currency="usd", state="ca").tax == 725
    assert calc(10000, "US", currency="usd", state="US-TX").tax == 625
    assert calc(10000, "US", currency="usd", state="WA").tax == 650
    assert calc(10000, "US", currency="usd", state="FL").tax == 600


def test_us_fractional_state_rate():
    result = calc(10000, "US", currency="usd", state="NJ")
    assert (result.rate, result.tax) == (Decimal("6.625"), 663)  # 662.5 -> 663


@pytest.mark.parametrize("state", ["OR", "MT", "NH", "DE", "AK"])
def test_us_state_without_sales_tax(state):
    result = calc(10000, "US", currency="usd", state=state)
    assert (result.rate_bps, result.tax, result.jurisdiction) == (0, 0, f"US-{state}")
    assert "no state sales tax" in result.note


def test_us_state_not_in_table():
    result = calc(10000, "US", currency="usd", state="ZZ")
    assert (result.tax, result.jurisdiction) == (0, "US-ZZ")
    assert "no rate in the built-in table" in result.note.lower()


def test_us_without_state():
    result = calc(10000, "US", currency="usd")
    assert (result.tax, result.jurisdiction) == (0, "US")
    assert result.note


def test_unknown_country():
    result = calc(10000, "BR", currency="brl")
    assert (result.rate_bps, result.tax, result.reverse_charge, result.jurisdiction) == (0, 0, False, "BR")
    assert "no rate in the built-in table" in result.note.lower()


def test_no_country():
    result = calc(10000, "")
    assert (result.tax, result.jurisdiction) == (0, "")
    assert result.note


# --- reverse charge -----------------------------------------------------------------
def test_reverse_charge_with_valid_vat_number():
    result = calc(10000, "FR", tax_id=VALID_FR_VAT, is_business=True)
    assert (result.rate_bps, result.tax, result.reverse_charge, result.tax_id_valid) == (0, 0, True, True)
    assert result.note == EU_NOTE
    assert result.jurisdiction == "FR"
    assert result.components == ()


def test_reverse_charge_inclusive_pricing():
    result = calc(12000, "FR", inclusive=True, tax_id=VALID_FR_VAT, is_business=True)
    assert (result.tax, result.reverse_charge, result.inclusive) == (0, True, True)


def test_vat_number_formatting_and_missing_prefix():
    assert calc(10000, "FR", tax_id="fr 403 032 650 45", is_business=True).reverse_charge
    assert calc(10000, "FR", tax_id="40303265045", is_business=True).reverse_charge


def test_invalid_vat_number_is_taxed():
    result = calc(10000, "FR", tax_id="FR00000000000", is_business=True)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (2000, False, False)
    assert "not valid" in result.note


def test_business_without_tax_id_is_taxed():
    result = calc(10000, "FR", is_business=True)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (2000, False, False)


def test_vat_number_of_another_country_is_taxed():
    result = calc(10000, "FR", tax_id=VALID_DE_VAT, is_business=True)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (2000, False, False)
    # ...and is fine where it belongs
    result = calc(10000, "DE", tax_id=VALID_DE_VAT, is_business=True)
    assert (result.tax, result.reverse_charge) == (0, True)


def test_greek_el_prefix():
    result = calc(10000, "GR", tax_id=VALID_GR_VAT, is_business=True)
    assert (result.tax, result.reverse_charge, result.jurisdiction) == (0, True, "GR")
    assert calc(10000, "GR", tax_id="094259216", is_business=True).reverse_charge
    # A Greek number is not French.
    assert not calc(10000, "FR", tax_id=VALID_GR_VAT, is_business=True).reverse_charge


def test_consumer_with_tax_id_pays_tax():
    result = calc(10000, "FR", tax_id=VALID_FR_VAT, is_business=False)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (2000, False, True)
    assert result.note == ""


def test_gb_reverse_charge():
    result = calc(10000, "GB", currency="gbp", tax_id=VALID_GB_VAT, is_business=True)
    assert (result.tax, result.reverse_charge) == (0, True)
    assert "HMRC" in result.note


def test_no_reverse_charge_outside_marked_jurisdictions():
    # A valid ABN does not switch off Australian GST in the built-in table.
    result = calc(10000, "AU", currency="aud", tax_id="51 824 753 556", is_business=True)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (1000, False, True)


def test_domestic_business_sale_is_not_reverse_charged():
    french_seller = BuiltinTaxEngine(seller_country="fr")
    query = TaxQuery(10000, "eur", False, "FR", tax_id=VALID_FR_VAT, is_business=True)
    result = french_seller.calculate(query)
    assert (result.tax, result.reverse_charge, result.tax_id_valid) == (2000, False, True)
    assert french_seller.calculate(
        TaxQuery(10000, "eur", False, "DE", tax_id=VALID_DE_VAT, is_business=True)
    ).reverse_charge


def test_reverse_charge_note():
    assert reverse_charge_note("fr") == EU_NOTE
    assert reverse_charge_note("GR") == EU_NOTE
    assert reverse_charge_note("US") == ""


def test_tax_label():
    assert tax_label("FR") == "VAT"
    assert tax_label("CA", "QC") == "GST + QST"
    assert tax_label("US", "NY") == "Sales tax"
    assert tax_label("") == "Tax"


# --- tax id validation ----------------------------------------------------------------
@pytest.mark.parametrize(
    "tax_id,country,valid",
    [
        (VALID_FR_VAT, "FR", True),
        ("FR00000000000", "FR", False),
        (VALID_FR_VAT, "DE", False),
        (VALID_GR_VAT, "GR", True),
        ("GR094259216", "GR", True),
        (VALID_GR_VAT, "FR", False),
        ("ATU13585627", "AT", True),
        (VALID_GB_VAT, "GB", True),
        ("GB123", "GB", False),
        (VALID_FR_VAT, "GB", False),
        ("NO 995 525 828 MVA", "NO", True),
        ("995525828", "NO", True),
        ("CHE-107.787.577 MWST", "CH", True),
        ("51 824 753 556", "AU", True),
        ("51 824 753 557", "AU", False),
        ("123456782RT0001", "CA", True),
        ("27AAPFU0939F1ZV", "IN", True),
        ("T5835678256246", "JP", True),
        ("04-2103594", "US", True),
        ("12.345.678/0001-95", "BR", True),  # no validator: shape only
        ("x", "BR", False),
        ("", "FR", False),
        ("   ", "BR", False),
        ("DROP TABLE; --", "FR", False),
    ],
)
def test_tax_id_validate(tax_id, country, valid):
    assert tax_id_validate(tax_id, country) is valid


# --- engine selection ---------------------------------------------------------------
class FlatEngine:
    def calculate(self, query: TaxQuery) -> TaxResult:
        return TaxResult(500, query.amount // 20, query.inclusive, False, "XX", False, "flat")


flat_engine = FlatEngine()


def test_get_tax_engine_default(settings):
    settings.RECUR_TAX_ENGINE = None
    tax_engine = get_tax_engine()
    assert isinstance(tax_engine, BuiltinTaxEngine)
    assert isinstance(tax_engine, TaxEngine)


def test_get_tax_engine_from_setting(settings):
    settings.RECUR_TAX_ENGINE = "tests.billing.test_tax.FlatEngine"
    tax_engine = get_tax_engine()
    assert isinstance(tax_engine, FlatEngine)
    assert tax_engine.calculate(TaxQuery(1000, "usd", False, "US")).tax == 50
    settings.RECUR_TAX_ENGINE = "tests.billing.test_tax.flat_engine"
    assert get_tax_engine() is flat_engine


def test_get_tax_engine_seller_country(settings):
    settings.RECUR_TAX_ENGINE = None
    settings.RECUR_TAX_SELLER_COUNTRY = "FR"
    assert get_tax_engine().seller_country == "FR"


# --- properties -----------------------------------------------------------------------
RATED = ["FR", "DE", "HU", "FI", "LU", "CH", "JP", "NZ"]


@given(
    amount=st.integers(min_value=0, max_value=10**15),
    extra=st.integers(min_value=0, max_value=10**6),
    country=st.sampled_from(RATED),
)
def test_inclusive_tax_is_bounded_and_monotonic(amount, extra, country):
    tax = calc(amount, country, inclusive=True).tax
    assert 0 <= tax <= amount
    assert calc(amount + extra, country, inclusive=True).tax >= tax


@given(amount=st.integers(min_value=0, max_value=10**15), country=st.sampled_from(RATED))
def test_inclusive_is_the_inverse_of_exclusive(amount, country):
    # Pricing a net amount exclusive then reading the gross inclusive gives the same tax.
    tax = calc(amount, country).tax
    assert abs(calc(amount + tax, country, inclusive=True).tax - tax) <= 1


@given(amount=st.integers(min_value=0, max_value=10**12), state=st.sampled_from(["QC", "BC", "MB", "SK"]))
def test_components_sum_to_the_tax(amount, state):
    for inclusive in (False, True):
        result = calc(amount, "CA", currency="cad", state=state, inclusive=inclusive)
        assert sum(c.tax for c in result.components) == result.tax
