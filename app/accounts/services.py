"""Account rules: registration, authentication, login sessions, profile, password reset, roles."""
from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from flask import current_app, g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict

from app import clock, database
from app.accounts.models import LoginSession, User
from app.accounts.passwords import hash_password, needs_rehash, verify_password, weakness
from app.extensions import db
from app.ids import parse_id
from app.links import external_url
from app.notifications import services as mail

PASSWORD_MIN = 8
PASSWORD_MAX = 256
_RESET_SALT = "password-reset"


class AccountError(ValueError):
    """A refused account action; `field` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalise_email(email: str) -> str:
    """One spelling per mailbox: trimmed, NFKC, lower-cased."""
    return unicodedata.normalize("NFKC", (email or "").strip()).lower()


def clean_display_name(name: str) -> str:
    """Trim, collapse runs of spaces and drop control characters."""
    name = "".join(ch for ch in unicodedata.normalize("NFKC", name or "") if unicodedata.category(ch)[0] != "C")
    return re.sub(r"\s+", " ", name).strip()


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def register(email: str, display_name: str, password: str, *, moderator: bool = False, locale: str | None = None) -> User:
    """Create a member; a taken email raises AccountError on the `email` field. Commits.

    `locale` is the language they signed up in: their emails keep it, also those sent later by the worker.
    """
    email = normalise_email(email)
    if find_by_email(email) is not None:
        raise AccountError(_("An account with this email already exists. Log in or reset your password."), "email")
    _require_strong(password, "password", email, display_name)
    user = User(
        email=email,
        display_name=clean_display_name(display_name),
        password_hash=hash_password(password),
        is_moderator=moderator,
        locale=locale,
    )
    db.session.add(user)
    try:
        db.session.flush()  # the id, for the unsubscribe link of the welcome mail
        mail.queue_mail(user, _l("Welcome to Threshold"), "welcome", user=user)
        db.session.commit()
    except IntegrityError:  # two registrations racing for one address
        db.session.rollback()
        raise AccountError(_("An account with this email already exists. Log in or reset your password."), "email") from None
    return user


class AccountLocked(AccountError):
    """Logins to this account are refused for now: too many wrong passwords in a row."""


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, else None (same cost either way).

    Besides the per-address rate limit, each account counts its failed logins: after
    LOGIN_FAILURES_MAX within LOGIN_FAILURE_WINDOW_MINUTES it is locked for LOGIN_LOCK_MINUTES
    (AccountLocked, the same answer whether the password is right or not) and its owner is told by
    mail once per lock. Guessing from many addresses (a botnet, or everyone behind one proxy) then
    still gets a handful of tries per quarter hour. The lock does say that the account exists — to
    someone who has already sent ten wrong passwords for it; the registration form says as much.
    """
    user = find_by_email(email)
    matches = verify_password(user.password_hash if user else None, password)
    if user is None:
        return None
    now = clock.utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise _locked(user)
    if not matches:
        if _count_failure(user, now):
            raise _locked(user)
        return None
    if user.login_failures or user.locked_until is not None:
        user.login_failures, user.login_failures_since, user.locked_until = 0, None, None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.session.commit()
    return user


def _locked(user: User) -> AccountLocked:
    return AccountLocked(_("Too many wrong passwords: logins to this account are paused for a few minutes. "
                           "We have sent its owner an email; you can also reset the password."), "password")


def _count_failure(user: User, now: datetime) -> bool:
    """One more failed login; the one that reaches the limit locks the account, mails its owner and
    returns True. Commits.

    Counted with conditional updates, so that concurrent failures from many processes all count and
    exactly one of them locks the account (and sends the mail).
    """
    config = current_app.config
    window_start = now - timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"])
    fresh = or_(User.login_failures_since.is_(None), User.login_failures_since < window_start)
    db.session.execute(
        update(User).where(User.id == user.id).values(
            login_failures=case((fresh, 1), else_=User.login_failures + 1),
            login_failures_since=case((fresh, now), else_=User.login_failures_since),
        ).execution_options(synchronize_session=False)
    )
    until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    locked = db.session.execute(
        update(User).where(User.id == user.id, User.login_failures >= config["LOGIN_FAILURES_MAX"])
        .values(locked_until=until, login_failures=0, login_failures_since=None).execution_options(synchronize_session=False)
    ).rowcount
    if locked:
        db.session.refresh(user)
        mail.queue_mail(user, _l("Logins to your Threshold account are paused"), "account_locked",
                        user=user, failures=config["LOGIN_FAILURES_MAX"], until=until)
    db.session.commit()
    return bool(locked)


def start_login_session(user: User) -> None:
    """Open a server-side login session for `user` (the cookie will name it). Commits."""
    login = LoginSession(user_id=user.id)
    db.session.add(login)
    db.session.commit()
    user.login_session_id = login.id


#: Built once: every request of a member runs it, and building the statement cost more than running it.
_SESSION_USER = (
    select(*User.__table__.columns)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), LoginSession.id == bindparam("session_id"), LoginSession.revoked_at.is_(None),
           User.deleted_at.is_(None))
)
#: The attribute each of those columns loads into.
_USER_COLUMNS = tuple(User.__mapper__.get_property_by_column(column).key for column in User.__table__.columns)


def load_user(cookie_id: str) -> User | None:
    """The user named by a login cookie, only while its login session is open (asked of the
    database on every request: a logout or password change ends the session everywhere at once)."""
    text, _sep, session_id = (cookie_id or "").partition(":")
    user_id = parse_id(text)
    if user_id is None or not session_id:
        return None
    # One round trip (app.database): no ping, no BEGIN/ROLLBACK; the request's own session opens
    # a transaction only if the page asks for more.
    row = database.read_one(db.engine, _SESSION_USER, {"user_id": user_id, "session_id": session_id})
    if row is None:
        return None
    user = User.__mapper__.class_manager.new_instance()  # as the ORM loads a row, from the one read: its
    instance_dict(user).update(zip(_USER_COLUMNS, row, strict=True))  # values straight into the state's dict
    make_transient_to_detached(user)
    user.login_session_id = session_id
    g.session_member = user  # joins the request's ORM session when it is made (app.extensions.RequestSession)
    if db.session.registry.has():  # already made
        db.session.add(user)
    return user


def end_login_session(user: User) -> None:
    """Revoke the login session of this browser. Commits."""
    if user.login_session_id:
        db.session.execute(
            update(LoginSession).where(LoginSession.id == user.login_session_id).values(revoked_at=clock.utcnow())
        )
        db.session.commit()


def _revoke_all(user: User) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=clock.utcnow())
    )


_UNCHANGED = object()


def update_profile(user: User, display_name: str, *, locale=_UNCHANGED, timezone=_UNCHANGED) -> None:
    """Save the profile: display name, and the language and time zone when given (None: automatic)."""
    user.display_name = clean_display_name(display_name)
    if locale is not _UNCHANGED:
        user.locale = locale or None
    if timezone is not _UNCHANGED:
        user.timezone = timezone or None
    db.session.commit()


def change_password(user: User, current: str, new: str) -> None:
    """Change the password after checking the current one; other logins end. Commits."""
    if not verify_password(user.password_hash, current):
        raise AccountError(_("Your current password is not correct."), "current_password")
    _set_password(user, new, "new_password")
    mail.queue_mail(user, _l("Your password was changed"), "password_changed", user=user)
    db.session.commit()
    start_login_session(user)


def _require_strong(password: str, field: str, *personal: str) -> None:
    """Refuse a password that is short or easy to guess (common, breached, a word, the member's own name)."""
    if len(password) < PASSWORD_MIN:
        raise AccountError(_("Use at least %(min)d characters.", min=PASSWORD_MIN), field)
    if (reason := weakness(password, personal)) is not None:
        raise AccountError(reason, field)


def _set_password(user: User, new: str, field: str) -> None:
    _require_strong(new, field, user.email, user.display_name)
    user.password_hash = hash_password(new)
    user.password_changed_at = clock.utcnow()
    _revoke_all(user)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_RESET_SALT)


def reset_token(user: User) -> str:
    """A signed token for the reset link; it dies when the password changes or the time runs out."""
    return _serializer().dumps({"u": user.id, "h": user.password_hash[-12:]})


def request_password_reset(email: str) -> None:
    """Mail a reset link when an account uses `email`; silent otherwise. Commits."""
    user = find_by_email(email)
    if user is None or user.deleted_at is not None:
        return
    link = external_url("accounts.reset_password", token=reset_token(user))
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    mail.queue_mail(user, _l("Reset your Threshold password"), "reset_password", user=user, link=link, minutes=minutes)
    db.session.commit()


def user_for_reset_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = db.session.get(User, data["u"])
    if user is None or user.password_hash[-12:] != data.get("h"):
        return None
    return user


def reset_password(user: User, new: str) -> None:
    """Set a new password from a reset link; every existing login ends. Commits."""
    _set_password(user, new, "password")
    db.session.commit()


def promote(email: str) -> User:
    """Make a member a moderator. Commits."""
    user = find_by_email(email)
    if user is None:
        raise AccountError(_("No account with email %(email)s", email=normalise_email(email)), "email")
    user.is_moderator = True
    db.session.commit()
    return user


#: At most this many moderators are mailed about one submission or report.
MODERATORS_MAILED = 200


def moderators_to_mail(*, except_id: int | None = None) -> list[User]:
    """Moderators who want mail about submissions and reports (`email_moderation`), but `except_id`
    (the moderator who caused it: nobody is told about their own action). One query."""
    query = select(User).where(User.is_moderator.is_(True), User.email_moderation.is_(True))
    if except_id is not None:
        query = query.where(User.id != except_id)
    return list(db.session.scalars(query.order_by(User.id).limit(MODERATORS_MAILED)))


def set_notifications(user: User, *, updates: bool, replies: bool, reminders: bool | None = None,
                      new_backers: str | None = None, moderation: bool | None = None) -> None:
    """Save which optional emails the member gets (None leaves a choice as it is; the moderation choice
    is kept only for moderators). Commits."""
    user.email_updates, user.email_replies = bool(updates), bool(replies)
    if reminders is not None:
        user.email_reminders = bool(reminders)
    if new_backers is not None:
        if new_backers not in mail.NEW_BACKER_CHOICES:
            raise AccountError(_("Choose how to hear about new backers."), "email_new_backers")
        user.email_new_backers = new_backers
    if moderation is not None and user.is_moderator:
        user.email_moderation = bool(moderation)
    db.session.commit()


def unsubscribe_target(token: str) -> tuple[User, str] | None:
    """The member and mail category ("updates", "replies", or "all" for a transactional mail's link)
    named by an unsubscribe token, or None."""
    found = mail.read_unsubscribe_token(token)
    if found is None:
        return None
    user = db.session.get(User, found[0])
    return (user, found[1]) if user is not None else None


def unsubscribe(user: User, category: str) -> None:
    """Turn off one optional category, or every optional one for "all" (a one-click unsubscribe from a
    transactional mail: that mail itself is always sent). Commits."""
    for each in [category] if category in mail.CATEGORIES else mail.CATEGORIES:
        mail.turn_off(user, each)
    db.session.commit()


# --- deleted accounts (app.fulfillment.data_rights decides when; this is what it does to the row) ---

#: Mail to this domain can never be delivered (RFC 2606 reserves .invalid).
DELETED_DOMAIN = "deleted.invalid"
#: The name a deleted member's campaigns, updates and money records show. Stored as written: other
#: members' pages show it in English until names of deleted members are drawn by the templates.
DELETED_NAME = "Deleted member"


def password_matches(user: User, password: str) -> bool:
    """Whether `password` is the member's (a confirmation before something that cannot be undone)."""
    return verify_password(user.password_hash, password or "")


def anonymise(user: User) -> None:
    """Blank what identifies a member — email (a unique address that can never receive mail), name,
    password (no password matches it), language, time zone, mail preferences — and end every login
    session at once. The row stays: pledges, campaigns and the ledger point at it. Does not commit."""
    now = clock.utcnow()
    user.email = f"deleted-{user.id}-{secrets.token_hex(6)}@{DELETED_DOMAIN}"
    user.display_name = DELETED_NAME
    user.password_hash = "!deleted"  # not an Argon2 hash: verify_password is False for every password
    user.password_changed_at = now
    user.is_moderator = False
    user.locale = user.timezone = None
    user.email_updates = user.email_replies = False
    user.login_failures, user.login_failures_since, user.locked_until = 0, None, None
    user.deleted_at = now
    _revoke_all(user)
