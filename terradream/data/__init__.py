"""Bulk data paths: tile sources (in-process engine or a server over HTTP), seeding and exporting regions."""
