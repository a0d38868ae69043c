"""Adapters that talk to Redis: the card-state cache, calculation records, the program switch."""
