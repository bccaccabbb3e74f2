"""What the steps, serving and the UI share: the wire schema, features, lake keys, storage,
registry, the ledger and its migrations, settings and logs. Imports nothing from a step."""
