import pytest


@pytest.fixture
def ebook(make_product):
    return make_product("E-book")


@pytest.fixture
def monthly(make_product):
    return make_product("Team plan", recurring="month")
