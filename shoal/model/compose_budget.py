"""A YAML composer with a budget: what a deploy file may cost is checked while it is read.

Under `shoal.model.compose_yaml`: ruamel.yaml's composer builds the node graph, in which an
alias is one more reference to its anchor's node (cheap); everything after it (construction,
pydantic, JSON for the stored revision) walks the graph *expanded*, so a few hundred bytes of
nested aliases ("billion laughs") would cost gigabytes there. This composer weighs every node as
it completes — a scalar its length, a collection the sum of its children, an alias its anchor's
weight again — and refuses the document the moment one node weighs more than the budget. So no
later step can allocate more than the budget: MemoryError is impossible by construction, not
caught. It also refuses what no Compose file needs and what makes later steps misbehave: an
alias or a collection as a mapping key (pydantic and ruamel hash such keys, expanded), an alias
of an anchor still open (a cycle), nesting deeper than `MAX_DEPTH`, more than `MAX_ALIASES`
aliases or `MAX_MERGES` merge keys (`<<`: ruamel's merging costs far more than linear), more
than `MAX_NODES` nodes (ruamel's pure-Python reader takes ~50 µs a node: the cap bounds the time a
file can take). `BudgetScanner` refuses deep flow nesting (`[[[[`) before it is read ahead: the
scanner looks ahead over a whole flow collection, in time quadratic in its depth.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, ScalarEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
from ruamel.yaml.scanner import RoundTripScanner

MAX_EXPANDED = 2_000_000  # characters and items of the document with every alias expanded
MAX_ALIASES = 10_000
MAX_MERGES = 200
MAX_MERGE_SOURCES = 16  # mappings one `<<` may merge
MAX_DEPTH = 64
MAX_NODES = 5_000
MERGE_TAG = "tag:yaml.org,2002:merge"


class BudgetExceeded(MarkedYAMLError):
    """The document costs more than the budget allows; `problem` says what, `problem_mark` where."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class BudgetComposer(Composer):
    """ruamel's Composer, weighing each node as it completes (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._weights: dict[int, int] = {}
        self._aliases = 0
        self._merges = 0
        self._nesting = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        as_key = isinstance(parent, MappingNode) and index is None
        if isinstance(event, AliasEvent):
            return self._alias(event, as_key)
        if as_key and not isinstance(event, ScalarEvent):
            raise BudgetExceeded("a mapping key must be a plain value, not a collection", event.start_mark)
        self._nesting += 1
        self._nodes += 1
        if self._nesting > MAX_DEPTH:
            raise BudgetExceeded(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        if self._nodes > MAX_NODES:
            raise BudgetExceeded(f"more than {MAX_NODES:,} values in one file", event.start_mark)
        node = super().compose_node(parent, index)
        self._nesting -= 1
        self._weigh(node)
        return node

    def _alias(self, event: AliasEvent, as_key: bool) -> Any:
        if as_key:
            name = str(event.anchor)[:40]
            raise BudgetExceeded(f"an alias (*{name}) cannot be a mapping key", event.start_mark)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise BudgetExceeded(f"more than {MAX_ALIASES} aliases", event.start_mark)
        target = self.anchors.get(event.anchor)
        if target is not None and id(target) not in self._weights:
            raise BudgetExceeded(f"alias *{str(event.anchor)[:40]} refers to itself", event.start_mark)
        return super().compose_node(None, None)

    def _weigh(self, node: Node) -> None:
        if isinstance(node, ScalarNode):
            weight = 1 + len(node.value)
        elif isinstance(node, MappingNode):
            weight = 1 + sum(self._weights[id(k)] + self._weights[id(v)] for k, v in node.value)
            self._count_merges(node)
        else:
            weight = 1 + sum(self._weights[id(child)] for child in node.value)
        if weight > MAX_EXPANDED:
            raise BudgetExceeded(
                f"with its aliases expanded, this value is larger than {MAX_EXPANDED:,} characters",
                node.start_mark,
            )
        self._weights[id(node)] = weight

    def _count_merges(self, node: MappingNode) -> None:
        for key, value in node.value:
            if key.tag == MERGE_TAG or (isinstance(key, ScalarNode) and key.value == "<<"):
                self._merges += 1
                sources = len(value.value) if not isinstance(value, MappingNode | ScalarNode) else 1
                if self._merges > MAX_MERGES or sources > MAX_MERGE_SOURCES:
                    raise BudgetExceeded(
                        f"too many merges (<<): at most {MAX_MERGES} in a file, "
                        f"{MAX_MERGE_SOURCES} mappings each",
                        key.start_mark,
                    )


class BudgetScanner(RoundTripScanner):
    """ruamel's round-trip scanner, refusing flow collections nested deeper than `MAX_DEPTH`."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:
        if len(self.flow_context) >= MAX_DEPTH:
            raise BudgetExceeded(f"nested deeper than {MAX_DEPTH} levels", self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)
