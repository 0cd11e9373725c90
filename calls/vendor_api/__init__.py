"""GET /api/v1/vendor/calls: a vendor reads its own call records with its vendor key."""
