"""Guarded content: templates whose merge fields are checked for their slot and their source."""
