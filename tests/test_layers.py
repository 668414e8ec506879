"""The dependency arrows run one way:
accounts ← notifications ← auctions ← bidding ← (adapters) ← auction_site.

Every import in every module of a layer is read with `ast` (lazy imports inside functions
included): a layer may import the layers below it, `infra` and third-party code, never a
layer above it nor the delivery libraries (channels, channels-redis, daphne).
"""

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = {"realtime", "api", "pages", "staff"}
SOCKETS = {"channels", "channels_redis", "daphne"}
PROJECT = {"auction_site"}

# Each package, and the top-level packages it must never import.
FORBIDDEN = {
    "infra": {"accounts", "notifications", "auctions", "bidding"} | ADAPTERS | PROJECT | SOCKETS,
    "accounts": {"notifications", "auctions", "bidding"} | ADAPTERS | PROJECT | SOCKETS,
    "notifications": {"auctions", "bidding"} | ADAPTERS | PROJECT | SOCKETS,
    "auctions": {"bidding"} | ADAPTERS | PROJECT | SOCKETS,
    "bidding": ADAPTERS | PROJECT | SOCKETS,
    "api": {"realtime", "pages", "staff"} | PROJECT,
    "pages": {"realtime", "api", "staff"} | PROJECT,
    # The admin reuses the pages' forms for auctions (one form, one set of checks).
    "staff": {"realtime", "api"} | PROJECT,
    "realtime": {"api", "pages", "staff"} | PROJECT,
    # The client library for API clients speaks only the wire protocol.
    "auction_client": {"infra", "accounts", "notifications", "auctions", "bidding"}
    | ADAPTERS
    | PROJECT
    | SOCKETS,
}


def imported_packages(source: str) -> set[str]:
    """The top-level package of every absolute import in `source`."""
    packages = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


def forbidden_imports(package: str) -> list[str]:
    """`module imports name` for every import the package's modules must not make."""
    found = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for name in sorted(imported_packages(path.read_text()) & FORBIDDEN[package]):
            found.append(f"{module} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package):
    assert forbidden_imports(package) == []


def test_the_check_sees_an_import_of_a_socket_module_even_inside_a_function():
    source = "import json\n\ndef publish():\n    from realtime.publish import events_publish\n"
    assert imported_packages(source) & FORBIDDEN["auctions"] == {"realtime"}
    assert imported_packages("import channels.layers") & FORBIDDEN["bidding"] == {"channels"}


def test_every_package_of_the_project_has_its_place():
    packages = {
        path.parent.name
        for path in REPO_ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"}
    }
    assert packages == set(FORBIDDEN) | PROJECT
