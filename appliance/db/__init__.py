"""Database access: engine creation, migrations and the models."""
