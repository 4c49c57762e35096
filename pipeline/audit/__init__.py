"""What rights managers and auditors run: version verification, reports, attribution."""
