"""libnftables (Debian's python3-nftables binding) for shoal's one table (agent/sys).

`apply()` (re)creates `inet <table>` in ONE JSON transaction — add table, delete table, add the
table with its chains and rules, and the renderer's `bridge <table>` likewise — so the kernel
swaps the old ruleset for the new atomically and no other table is touched. `fingerprint()`
reads the table back; `parse_fingerprint` (pure, unit-tested on captured `list table` JSON)
finds the mark the renderer put in it, and `parse_elements` the sets' members; `change()` adds
and deletes set elements in one transaction. Runs in the node's netns on a short-lived thread (net.nsthread).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nftables

from shoal.agent.net.nsthread import in_netns
from shoal.errors import ShoalError, first_line


class NftError(ShoalError):
    """libnftables refused a ruleset."""


def parse_fingerprint(listing: str) -> str | None:
    """The `shoal:` comment in a `list table` JSON answer; None when absent."""
    for item in json.loads(listing or "{}").get("nftables", []):
        comment = item.get("rule", {}).get("comment", "")
        if comment.startswith("shoal:"):
            return str(comment)
    return None


def parse_elements(listing: str) -> dict[str, list[str]]:
    """Each set's elements (addresses) in a `list table` JSON answer."""
    sets: dict[str, list[str]] = {}
    for item in json.loads(listing or "{}").get("nftables", []):
        if "set" in item:
            elems = item["set"].get("elem", [])
            sets[item["set"]["name"]] = sorted(_element(e) for e in elems)
    return sets


def _element(elem: Any) -> str:
    """An element as a string: an address or a name; a concatenation as "a . b"."""
    if isinstance(elem, dict) and "concat" in elem:
        return " . ".join(str(part) for part in elem["concat"])
    return str(elem["elem"]["val"]) if isinstance(elem, dict) else str(elem)


def _context() -> nftables.Nftables:
    nft = nftables.Nftables()
    nft.set_json_output(True)
    nft.set_handle_output(False)
    return nft


class Nft:
    def __init__(self, namespace: Path | None, table: str) -> None:
        self.namespace = namespace
        self.table = table
        self.transactions = 0

    def _table(self) -> dict[str, Any]:
        return {"table": {"family": "inet", "name": self.table}}

    def listing(self, family: str = "inet") -> str | None:
        """`list table <family> <table>` as JSON; None when the table does not exist."""

        def run() -> tuple[int, str, str]:
            result: tuple[int, str, str] = _context().cmd(f"list table {family} {self.table}")
            return result

        rc, out, _ = in_netns(self.namespace, run)
        return out if rc == 0 else None

    def fingerprint(self) -> str | None:
        listing = self.listing()
        return parse_fingerprint(listing) if listing is not None else None

    def apply(self, commands: list[dict[str, Any]]) -> None:
        bridge = {"table": {"family": "bridge", "name": self.table}}
        fresh = [{"add": self._table()}, {"delete": self._table()}, {"add": bridge}, {"delete": bridge}]
        doc = {"nftables": [*fresh, *commands]}
        self._run(doc, "apply")

    def change(self, commands: list[dict[str, Any]]) -> None:
        """Commands on the table in place (set elements) in one transaction; rules are untouched."""
        self._run({"nftables": commands}, "update")

    def remove(self) -> None:
        """Both of shoal's tables (the inet one and its `bridge` twin), whichever exist."""
        bridge = {"table": {"family": "bridge", "name": self.table}}
        self._run({"nftables": [{"add": bridge}, {"delete": bridge}]}, "remove")
        if self.listing() is not None:
            self._run({"nftables": [{"delete": self._table()}]}, "remove")

    def _run(self, doc: dict[str, Any], what: str) -> None:
        self.transactions += 1

        def run() -> tuple[int, Any, str]:
            result: tuple[int, Any, str] = _context().json_cmd(doc)
            return result

        rc, _, error = in_netns(self.namespace, run)
        if rc != 0:
            line = first_line(error) or f"rc {rc}"
            raise NftError(f"nftables {what} of table inet {self.table} failed: {line}")
