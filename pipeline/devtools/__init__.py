"""Development and test tooling: a local Kafka broker (plain or TLS), the demo, the worker harness."""
