"""The User model."""
from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from app import clock
from app.extensions import db


def _new_session_id() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    """A member: backer and creator at once; moderators are members with a flag."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Normalised: stripped and lower-cased, so that one mailbox has one account.
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(80), nullable=False)
    #: Argon2id hash (argon2-cffi); never the password.
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_moderator: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Stripe customer id, made on the first pledge.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    #: Optional emails the member chose to get (notification preferences); transactional mail
    #: (pledges, payments, password) is always sent.
    email_updates: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    email_replies: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    #: The reminder 48 hours before the deadline of a campaign the member saved.
    email_reminders: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    #: A creator's mail about new backers: "each" (one per backer), "digest" (one a day per campaign) or "off".
    email_new_backers: Mapped[str] = mapped_column(String(8), nullable=False, default="each", server_default="each")
    #: Moderators only: mail on a campaign submitted for review and on a new report.
    email_moderation: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())
    #: Failed logins since `login_failures_since` (a window of LOGIN_FAILURE_WINDOW_MINUTES).
    login_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    login_failures_since: Mapped[datetime | None] = mapped_column(DateTime)
    #: Too many failed logins: no login (right password or not) until then.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    #: Moved by each campaign the member saves or removes (app.community.follows): with the campaigns'
    #: version, the key of their saved list, which a cached pledges page then need not read (it is read with
    #: the login session, on every request).
    saved_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    #: The member deleted their account (app.fulfillment.data_rights): the row stays, anonymised, for
    #: the money records that point at it; no mail, no login.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    #: The login session this request runs under (set by the user loader), not a column.
    login_session_id = None

    def get_id(self) -> str:
        # The cookie names a server-side login session, so logging out or changing the password
        # makes every copy of the cookie worthless.
        return f"{self.id}:{self.login_session_id}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class LoginSession(db.Model):
    """One login on one browser; revoked on logout and when the password changes."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=_new_session_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountEvent(db.Model):
    """The account audit log: what was done to a member's account and its data (a data export, the
    account's deletion), by whom, when; `note` says what was done, never personal data."""

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    #: "data_exported", "deleted".
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Who did it (the member themself, or a moderator); None means the system.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=clock.utcnow)
