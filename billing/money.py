"""Placeholder: replaced by the full money module."""


def is_supported_currency(code: str) -> bool:
    return code in {"usd", "eur", "gbp", "jpy", "kwd"}
