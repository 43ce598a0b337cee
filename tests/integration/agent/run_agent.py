"""Runs a real agent (agent.assemble) in this process against a FileClient: the tests' child.

Usage: python tests/integration/agent/run_agent.py DATA_DIR CLIENT_DIR
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from shoal.agent.assemble import build_agent
from shoal.agent.config import load_config, load_node
from tests.integration.agent.fileclient import FileClient


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data_dir, client_dir = Path(sys.argv[1]), Path(sys.argv[2])
    agent = build_agent(load_config(data_dir), load_node(data_dir), client=FileClient(client_dir))
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    agent.run()


if __name__ == "__main__":
    main()
