"""What rights managers and auditors run: verification of versions, reports (coming)."""
