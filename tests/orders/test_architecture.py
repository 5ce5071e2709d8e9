"""Orders sit below what they bill for: checkout, subscriptions, refunds and disputes call
down into orders, and orders learn nothing from them except through domain events."""

import ast
from pathlib import Path

import billing.orders

HIGHER = ("billing.subscriptions", "billing.checkout", "billing.refunds", "billing.disputes")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_orders_never_import_the_apps_above_them():
    root = Path(billing.orders.__file__).parent
    files = sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts)
    assert files, "no orders modules found"
    offending = [
        f"{path.relative_to(root)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if module.startswith(HIGHER)
    ]
    assert offending == []


def test_the_rule_catches_a_function_level_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from billing.subscriptions.services import x\n"
        "from billing import checkout\n"
        "import billing.refunds\n"
    )
    modules = [m for _, m in _imports(sample)]
    assert any(m.startswith(HIGHER) for m in modules)
    assert "billing.refunds" in modules and "billing.checkout" in modules
