"""Versioned sets of audio descriptors stored alongside each corpus row."""
