"""Latency and throughput of the score API (`memberscore serve`) on loopback, beside the peers
doing the same work: Feast's feature server followed by MLflow's model server."""
