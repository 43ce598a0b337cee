"""`shoal login` and `shoal context ls|use|rm`: pinning a cluster's CA and keeping its token.

Login checks the token against the server (`GET /whoami`) over TLS verified with the CA before
storing anything; the CA comes from `--ca FILE`, from `--fingerprint` (fetched and checked), or
is fetched and shown for the person to confirm (trust on first use).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from shoal.cli.common import output_option, say, wants_json
from shoal.cli.render import print_json, print_table
from shoal.client import Client
from shoal.client.contexts import ContextStore, context_name
from shoal.client.transport import server_root
from shoal.client.trust import ca_fingerprint, fetch_ca, fetch_pinned_ca
from shoal.errors import ConfigError


def _read_ca(path: Path) -> bytes:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--ca {path}: {exc.strerror}") from exc
    ca_fingerprint(pem)  # refuses what is not a certificate
    return pem


def _confirmed_ca(server: str) -> bytes:
    pem = fetch_ca(server)
    click.echo(
        f"The server at {server} presents a CA with SHA-256 fingerprint\n  {ca_fingerprint(pem)}", err=True
    )
    click.confirm("Trust it for this cluster?", abort=True, err=True)
    return pem


def _ca_for(server: str, ca: Path | None, fingerprint: str | None, yes: bool) -> bytes:
    if ca is not None:
        return _read_ca(ca)
    if fingerprint:
        return fetch_pinned_ca(server, fingerprint)
    return fetch_ca(server) if yes else _confirmed_ca(server)


def _check_token(server: str, token: str, pem: bytes) -> str:
    """The token's role, asked of the server over TLS verified with this CA."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as tmp:
        tmp.write(pem)
        tmp.flush()
        with Client(server, token, Path(tmp.name)) as api:
            me = api.whoami()
    return me.role or me.kind


@click.command("login")
@click.argument("url")
@click.option("--token", envvar="SHOAL_TOKEN", required=True, help="an API token (shoal token create)")
@click.option(
    "--ca", type=click.Path(dir_okay=False, path_type=Path), help="the cluster CA certificate (PEM)"
)
@click.option("--fingerprint", help="expected SHA-256 of the cluster CA: fetch it and check")
@click.option("--name", help="context name (default: from the URL's host)")
@click.option("--yes", "-y", is_flag=True, help="trust the CA the server presents without asking")
@output_option
def login(url: str, token: str, **opts: Any) -> None:
    """Log in to a cluster: pin its CA, check the token and store both as the current context."""
    server = server_root(url)
    pem = _ca_for(server, opts["ca"], opts["fingerprint"], opts["yes"])
    role = _check_token(server, token, pem)
    context = opts["name"] or context_name(server)
    ContextStore().put(context, server, token, pem)
    say(
        f"logged in to {server} as {role} (context {context})",
        {"server": server, "role": role, "context": context},
    )


@click.group("context")
def context() -> None:
    """The clusters this CLI knows (`shoal login` adds one)."""


@context.command("ls")
@output_option
def context_ls() -> None:
    """List contexts; the current one is marked."""
    doc = ContextStore().load()
    rows = [
        {"name": n, "current": n == doc.current, "server": e.server, "ca": e.ca}
        for n, e in sorted(doc.contexts.items())
    ]
    if wants_json():
        print_json(rows)
        return
    print_table(
        ["", "name", "server", "ca"],
        [["*" if r["current"] else "", r["name"], r["server"], r["ca"]] for r in rows],
    )


@context.command("use")
@click.argument("name")
@output_option
def context_use(name: str) -> None:
    """Make NAME the current context."""
    ContextStore().use(name)
    say(f"now using context {name}", {"current": name})


@context.command("rm")
@click.argument("name")
@output_option
def context_rm(name: str) -> None:
    """Forget context NAME (its token and pinned CA)."""
    ContextStore().remove(name)
    say(f"removed context {name}", {"removed": name})
