"""Personas: groups of customers found in their order history, each with a name, a rule and a size."""
