"""The `shopkeeper` command line."""
