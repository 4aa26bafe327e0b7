"""Extensions, created unbound and bound to the app in `create_app`."""
from flask import g, has_app_context
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base with constraint names that Alembic can diff and drop on every database."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class RequestSession(Session):
    """The ORM session of a request (or command), made at its first use: the member the login check
    loaded joins it then (`g.session_member`), so their changes are saved as any object's, and a
    request that asks the ORM nothing (a page from the cache) makes no session at all."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        member = g.get("session_member") if has_app_context() else None
        if member is not None:
            self.add(member)


db = SQLAlchemy(model_class=Base, session_options={"class_": RequestSession})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
mail = Mail()
bootstrap = Bootstrap5()
