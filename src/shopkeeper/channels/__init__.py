"""Delivery channels: sending a finished message by email (SMTP) or by a signed webhook."""
