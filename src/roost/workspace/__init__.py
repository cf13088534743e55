"""Orchestration: lifecycle, records, exec history and agent calls, over backends and the store."""
