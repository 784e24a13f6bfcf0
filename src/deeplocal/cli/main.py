"""The `deeplocal` command: one typer app, one module per command group."""

from __future__ import annotations

import importlib

import typer

# (module under deeplocal.cli, command-group name). Each module exposes `app: typer.Typer`.
GROUPS: tuple[tuple[str, str], ...] = (
    ("plan", "plan"),
    ("bench", "bench"),
    ("cost", "cost"),
    ("keys", "keys"),
    ("audit", "audit"),
    ("models", "models"),
    ("deploy", "deploy"),
)

# (module under deeplocal.cli, function name, command name) for single commands.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("serve", "serve", "serve"),
    ("doctor", "doctor", "doctor"),
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="deeplocal",
        help="Run DeepSeek-class LLMs privately, on hardware you own.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for module_name, func_name, command_name in COMMANDS:
        module = importlib.import_module(f"deeplocal.cli.{module_name}")
        app.command(command_name)(getattr(module, func_name))
    for module_name, group in GROUPS:
        module = importlib.import_module(f"deeplocal.cli.{module_name}")
        app.add_typer(module.app, name=group)

    @app.command("version")
    def version() -> None:
        """Print the deeplocal version."""
        from deeplocal import __version__

        typer.echo(__version__)

    return app


def main() -> None:
    build_app()()
