"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""
import sys

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as error:  # one clear line per problem, no traceback
    sys.exit("\n".join(f"Threshold cannot start: {problem}" for problem in error.problems))
