"""Scenarios: the YAML schema, the runner, the shipped scenario files and the ``recworld`` CLI."""
