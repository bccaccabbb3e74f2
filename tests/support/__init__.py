"""Real services for tests: SeaweedFS, PostgreSQL databases, an MLflow server, the data API."""
