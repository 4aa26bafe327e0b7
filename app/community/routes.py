"""Routes for updates, comments, FAQ and questions."""
from app.community import bp  # noqa: F401
