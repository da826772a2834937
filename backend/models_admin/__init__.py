"""models_admin."""
