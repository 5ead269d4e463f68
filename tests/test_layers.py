"""The layers of accounts_app, as a contract over the import graph.

Each module may import its own layer and the layers below it, never one above:

    entry points (views, URLs, admin, commands)
    -> what runs around the views (middleware, context processors, sign-in hooks)
    -> services, selectors, forms, policy
    -> audit, the Alibaba client, notifications
    -> models
    -> rules (the API's parameter rules as data; models take choices from it)

Two packages stand apart and import nothing of the rest of the app: the Alibaba
client (it talks to a foreign API) and the simulator (a foreign server: sharing
the app's rules or models would let a shared mistake pass unnoticed).

Every import counts, those inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "accounts_app"

LAYERS = [
    {
        "accounts_app.views",
        # The JSON API: views of another format, asking the same policy and services.
        "accounts_app.api",
        "accounts_app.urls",
        "accounts_app.admin",
        "accounts_app.apps",
        "accounts_app.templatetags",
        "accounts_app.management",
        # What the workers run: the tasks and their schedule.
        "accounts_app.background.tasks",
        "accounts_app.background.scheduler",
        "accounts_app.background.admin",
        # The OIDC sign-in URLs and the app that lets allauth find our provider.
        "accounts_app.sso.urls",
        "accounts_app.sso.apps",
    },
    # Around the views: what Django calls before and after them.
    {
        "accounts_app.middleware",
        "accounts_app.context_processors",
        "accounts_app.signals",
        "accounts_app.reauth",
        "accounts_app.lockout",
        "accounts_app.sessions",
        "accounts_app.message_storage",
        # allauth's adapters, the OIDC provider and token checks, the no-role middleware.
        "accounts_app.sso",
    },
    {
        "accounts_app.services",
        "accounts_app.selectors",
        "accounts_app.forms",
        "accounts_app.policy",
        "accounts_app.roles",
        "accounts_app.backends",
        "accounts_app.background.sync",
        "accounts_app.background.follow",
    },
    {
        "accounts_app.audit",
        "accounts_app.alibaba",
        "accounts_app.notifications",
        "accounts_app.background.delivery",
        "accounts_app.background.retry",
        "accounts_app.background.workers",
        "accounts_app.background.housekeeping",
        "accounts_app.chat.delivery",
        "accounts_app.chat.messages",
        "accounts_app.chat.platforms",
        "accounts_app.chat.verify",
    },
    # The package itself and background.models: the task engine's bookkeeping tables.
    {"accounts_app.models", "accounts_app.background", "accounts_app.chat"},
    {
        "accounts_app.rules",
        "accounts_app.api_labels",
        # Labels translated once per language: api_labels, the audit messages and rows.
        "accounts_app.translations",
        "accounts_app.vpc_auth",
        "accounts_app.wording",
    },
]
STANDING_APART = ["accounts_app.alibaba", "accounts_app.simulator"]


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The accounts_app modules a file imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # "from accounts_app import policy" imports the module accounts_app.policy.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {imported for imported in found if is_app_module(imported)}


def is_app_module(name: str) -> bool:
    path = APP.parent / name.replace(".", "/")
    return name.startswith("accounts_app.") and (
        path.with_suffix(".py").exists() or (path / "__init__.py").exists()
    )


def import_graph() -> dict[str, set[str]]:
    return {
        module_name(path): imports_of(path)
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts
    }


def owner(module: str, prefixes) -> str | None:
    return next((p for p in prefixes if module == p or module.startswith(p + ".")), None)


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if owner(module, layer):
            return index
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            apart = owner(module, STANDING_APART)
            if apart and not owner(target, [apart]):
                found.append(f"{module} -> {target}: {apart} imports nothing of the app")
                continue
            if owner(target, STANDING_APART) == "accounts_app.simulator" and not apart:
                continue  # the kvstore_simulator command starts it
            mine, theirs = layer_of(module), layer_of(target)
            if mine is not None and theirs is not None and theirs < mine:
                found.append(f"{module} -> {target}: a lower layer imports a higher one")
    return found


def test_every_module_of_the_app_has_a_layer():
    graph = import_graph()
    unplaced = [
        module
        for module in graph
        if module != "accounts_app"
        and layer_of(module) is None
        and not owner(module, STANDING_APART)
    ]
    assert not unplaced, f"Place these modules in LAYERS ({__file__}): {unplaced}"


def test_no_import_runs_up_the_layers():
    assert violations(import_graph()) == []


def test_the_contract_catches_an_import_up_the_layers():
    graph = import_graph()
    graph["accounts_app.models"] = graph["accounts_app.models"] | {"accounts_app.views.core"}
    graph["accounts_app.simulator.state"] = {"accounts_app.rules"}
    assert violations(graph) == [
        "accounts_app.models -> accounts_app.views.core: a lower layer imports a higher one",
        "accounts_app.simulator.state -> accounts_app.rules: "
        "accounts_app.simulator imports nothing of the app",
    ]


MAX_VIEW_LINES = 25


def test_no_view_is_longer_than_25_lines():
    """Views are decorators, a form, a service or selector call, and a response."""
    long_views = []
    for path in (APP / "views").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            is_view = isinstance(node, ast.FunctionDef) and node.args.args[:1] != []
            if is_view and node.args.args[0].arg == "request":
                first = node.body[0]
                # Past the docstring, if there is one.
                start = node.body[1].lineno if ast.get_docstring(node) else first.lineno
                if node.end_lineno - start + 1 > MAX_VIEW_LINES:
                    long_views.append(f"{path.name}:{node.name}")
    assert not long_views
