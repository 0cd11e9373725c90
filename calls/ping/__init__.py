"""The vendor ping: reading the request, deciding, reserving, recording, and its schema."""
