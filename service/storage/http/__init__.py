"""Adapters that talk HTTP to other systems: webhook deliveries."""
