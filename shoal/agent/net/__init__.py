"""Node networking helpers shared by the network, WireGuard, firewall and DNS reconcilers."""
