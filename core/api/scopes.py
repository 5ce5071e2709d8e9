"""Every API resource a token can be scoped to. Each grants `<resource>:read` and `:write`."""

API_RESOURCES: tuple[str, ...] = (
    "customers",
    "organization",
    "products",
    "discounts",
    "checkouts",
    "orders",
    "subscriptions",
    "refunds",
    "disputes",
    "ledger",
    "webhooks",
    "events",
    "benefits",
    "files",
)

ALL_SCOPES: tuple[str, ...] = tuple(f"{r}:{access}" for r in API_RESOURCES for access in ("read", "write"))
