"""Browser tests of the Leaflet viewer."""
