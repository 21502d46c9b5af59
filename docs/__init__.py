"""Documentation tooling, outside the runtime: the topic catalogue and the generators of
docs/asyncapi.json and the README's tables (run from the repository root, ``python -m docs.<name>``)."""
