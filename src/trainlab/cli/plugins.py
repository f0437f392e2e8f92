"""``trainlab list [KIND [NAME]]`` and the ``--import`` option every command takes."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "add_plugin_options", "cmd_list", "load_cli_plugins"]


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """``--import FILE_OR_MODULE`` (repeatable) and ``--allow-changed-plugins``."""
    g = parser.add_argument_group("your own code")
    g.add_argument("--import", dest="imports", action="append", default=[],
                   metavar="FILE_OR_MODULE", help="import a plug-in (a .py file, package folder "
                   "or module) that registers models, data, losses…; repeatable")  # fmt: skip
    g.add_argument("--allow-changed-plugins", action="store_true",
                   help="warn, instead of refusing, when a run's plug-in file changed or "
                   "vanished since it was trained")  # fmt: skip


def load_cli_plugins(args: argparse.Namespace) -> None:
    """Installed entry points, then each ``--import``, before the command runs."""
    import importlib.metadata

    from trainlab.plugins import ENTRY_POINT_GROUP, allow_changed_plugins, load_plugins

    if getattr(args, "allow_changed_plugins", False):
        allow_changed_plugins(True)
    imports = list(getattr(args, "imports", []) or [])
    if imports or importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        load_plugins(imports)


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from trainlab.listing import entry_rows, option_rows, registries, resolve_kind, singular

    console = Console()
    if args.kind is None:
        table = Table(title="registry kinds (trainlab list KIND shows the entries)")
        table.add_column("kind")
        table.add_column("entries", justify="right")
        for kind, reg in registries().items():
            table.add_row(kind, str(len(reg.names())))
        console.print(table)
        return 0
    kind, _ = resolve_kind(args.kind)
    if args.name is None:
        table = Table(title=f"{kind} (trainlab list {kind} NAME shows its options)")
        for col in ("name", "what", "from"):
            table.add_column(col)
        for row in entry_rows(kind):
            table.add_row(*(escape(c) for c in row))
        console.print(table)
        return 0
    rows, summary = option_rows(kind, args.name)
    table = Table(title=escape(f"{singular(kind)} '{args.name}': {summary}"))
    table.add_column("option", no_wrap=True)
    for col in ("type", "default", "help"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(escape(c) for c in (r.name, r.type, r.default, r.help)))  # list[int]
    console.print(table if rows else f"{args.name}: no options ({summary})")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``list`` to ``trainlab``'s sub-commands."""
    p = sub.add_parser(
        "list",
        help="list registered models, data, tasks, losses, metrics, optimizers, schedulers, "
        "callbacks, or one entry's options",
        description="Without arguments: the registry kinds. With KIND: its entries and where "
        "each comes from (plug-ins included). With KIND NAME: the options a recipe may set, "
        "with type, default and help (e.g. trainlab list data image_folder).",
    )
    p.add_argument("kind", nargs="?", metavar="KIND",
                   help="models, data, tasks, losses, metrics, optimizers, schedulers, "
                   "callbacks")  # fmt: skip
    p.add_argument("name", nargs="?", metavar="NAME", help="an entry: show its options")
    p.set_defaults(func=cmd_list)
