"""Routes for reports and the creator's public profile with their track record."""
from app.community import bp  # noqa: F401
