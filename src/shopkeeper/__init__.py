"""shopkeeper: a self-hosted personalization engine for small and mid-size shops."""
