"""Shared vocabulary of every layer: tile keys, Web-Mercator geometry, regions (bbox -> tile ranges), errors."""
