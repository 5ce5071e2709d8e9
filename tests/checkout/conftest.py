import pytest

from billing.catalog import services as catalog


@pytest.fixture
def make_product(org):
    def make(name="Pro plan", *, recurring=None, prices=None, **kwargs):
        interval, count = (recurring or (None, 1)) if isinstance(recurring, tuple) else (recurring, 1)
        return catalog.product_create(
            organization=kwargs.pop("organization", org),
            name=name,
            recurring_interval=interval,
            recurring_interval_count=count,
            prices=prices or [{"currency": "usd", "type": "fixed", "amount": 2000}],
            **kwargs,
        )

    return make


@pytest.fixture
def ebook(make_product):
    return make_product("E-book")


@pytest.fixture
def monthly(make_product):
    return make_product("Team plan", recurring="month")
