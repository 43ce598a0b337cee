"""The root of the CLI for people: global options and the noun groups (cli/<noun>.py)."""

from __future__ import annotations

import click

from shoal import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shoal")
def cli() -> None:
    """shoal: run Compose apps on a small cluster of machines."""
