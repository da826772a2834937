"""ops: what an operator needs: readiness, metrics, backup and restore, the data folder lock."""
