"""Resource sources of the system under test: Prometheus' HTTP API and this machine's own samples."""
