"""The REST API for mobile apps, under /api/v1/ (see README "API for mobile apps")."""
