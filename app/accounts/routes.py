"""Account pages: thin views over accounts.services."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.accounts import bp, services
from app.accounts.forms import LoginForm, PasswordForm, ProfileForm, RegisterForm, ResetPasswordForm, ResetRequestForm
from app.accounts.urls import safe_next
from app.extensions import limiter, login_manager

login_manager.login_view = "accounts.login"
login_manager.login_message = None  # the login page says why on its own
login_manager.session_protection = "basic"


@login_manager.user_loader
def _load_user(cookie_id: str):
    return services.load_user(cookie_id)


@bp.before_app_request
def _check_the_session_first() -> None:
    """A member's login session is checked before the page's own queries, not in the middle of them:
    on the connection the page's transaction then takes, already verified (app.database), instead of a
    second one beside it, pinged. (Static files ask nothing of the database, and need no member.)"""
    if request.endpoint and not request.endpoint.endswith("static"):
        current_user._get_current_object()


def _log_in(user, remember: bool = False) -> None:
    session.clear()  # a fresh session on login: nothing from before survives (no fixation)
    services.start_login_session(user)
    login_user(user, remember=remember)


def _auth_limit() -> str:
    return current_app.config.get("AUTH_RATE_LIMIT", "10 per minute")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.register(form.email.data, form.display_name.data, form.password.data,
                                     locale=str(get_locale()))
        except services.AccountError as error:
            form.show_error(error)
        else:
            _log_in(user)
            flash(_("Welcome, %(name)s! Your account is ready.", name=user.display_name), "success")
            return redirect(url_for("main.index"))
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(form.next.data) or url_for("main.index"))
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.AccountLocked as error:
            form.show_error(error)
        else:
            if user is None:
                form.password.errors.append(_("That email and password do not match an account."))
            else:
                target = safe_next(form.next.data) or url_for("main.index")
                _log_in(user, remember=bool(form.remember.data))
                flash(_("You are logged in."), "success")
                return redirect(target)
    return render_template("accounts/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        services.end_login_session(current_user)
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("main.index"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    profile_form = ProfileForm(prefix="profile", obj=current_user if request.method == "GET" else None)
    password_form = PasswordForm(prefix="password")
    status = 200
    if "profile-submit" in request.form and profile_form.validate_on_submit():
        services.update_profile(current_user, profile_form.display_name.data,
                                locale=profile_form.locale.data or None, timezone=profile_form.timezone.data or None)
        refresh()  # the message below is in the language just chosen
        flash(_("Your profile is saved."), "success")
        return redirect(url_for("accounts.profile"))
    if "password-submit" in request.form and password_form.validate_on_submit():
        try:
            services.change_password(current_user, password_form.current_password.data, password_form.new_password.data)
        except services.AccountError as error:
            password_form.show_error(error)
        else:
            login_user(current_user._get_current_object())  # the cookie now names the new login session
            flash(_("Your password is changed. Other devices have been logged out."), "success")
            return redirect(url_for("accounts.profile"))
    if profile_form.errors or password_form.errors:
        status = 422
    return render_template("accounts/profile.html", profile_form=profile_form, password_form=password_form), status


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        # The same answer whether or not the account exists, so the form does not reveal members.
        flash(_("If an account uses that address, we have sent it a link to choose a new password."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_request.html", form=form), 422 if form.errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def reset_password(token: str):
    user = services.user_for_reset_token(token)
    if user is None:
        flash(_("That reset link is invalid or has expired. Ask for a new one."), "warning")
        return redirect(url_for("accounts.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(user, form.password.data)
        except services.AccountError as error:
            form.show_error(error)
        else:
            flash(_("Your password is changed. Log in with the new one."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form), 422 if form.errors else 200
