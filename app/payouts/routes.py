"""Payout pages: the creator's payout account (Stripe's hosted onboarding and back), a campaign's
payout, and the moderators' hold. Thin views."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.campaigns import shipping
from app.campaigns.lookups import own_or_403
from app.payments import gateway
from app.payouts import bp, services
from app.payouts.forms import AccountForm

bp.add_app_template_global(services.payouts_of, "payouts_of")
bp.add_app_template_global(services.books_of, "ledger_books")


@bp.app_template_global("ledger_kind_name")
def ledger_kind_name(kind: str) -> str:
    return {
        "charge": _("Payment from a backer"),
        "fee": _("Stripe processing fee"),
        "refund": _("Refund to a backer"),
        "transfer": _("Paid to you"),
        "reversal": _("Taken back for a refund"),
    }.get(kind, kind)


@bp.app_template_global("payout_state_name")
def payout_state_name(state: str) -> str:
    return {
        "due": _("due, not sent yet"),
        "sending": _("being sent"),
        "paid": _("paid"),
        "failed": _("refused by Stripe, tried again later"),
        "nothing": _("nothing to pay"),
    }.get(state, state)


def _account_form() -> AccountForm:
    form = AccountForm()
    form.country.choices = [("", _("Choose a country"))] + [
        (code, shipping.country_name(code)) for code in sorted(services.ACCOUNT_CURRENCIES, key=lambda c: shipping.sort_key(shipping.country_name(c)))
    ]
    return form


@bp.route("/me/payouts", methods=["GET", "POST"])
@login_required
def account():
    """The creator's payout account: its state as Stripe has it, and the way to Stripe's onboarding."""
    payout_account = services.account_for(current_user)
    form = _account_form()
    if form.validate_on_submit():
        try:
            url = services.start_onboarding(current_user, form.country.data or None)
        except services.PayoutError as error:
            form.show_error(error)
        except gateway.GatewayError as error:
            form.form_errors.append(error.message)
        else:
            return redirect(url)
        return render_template("payouts/account.html", form=form, account=payout_account, currencies=services.ACCOUNT_CURRENCIES), 422
    return render_template("payouts/account.html", form=form, account=payout_account, currencies=services.ACCOUNT_CURRENCIES)


@bp.route("/me/payouts/return")
@login_required
def onboarding_return():
    """Back from Stripe: what happened is read from Stripe, never from this address."""
    payout_account = services.account_for(current_user)
    if payout_account is None:
        return redirect(url_for("payouts.account"))
    try:
        services.refresh_account(payout_account)
    except gateway.GatewayError as error:
        flash(error.message, "danger")
        return redirect(url_for("payouts.account"))
    if payout_account.payouts_enabled:
        flash(_("Your payout account is ready: your campaigns can launch, and their money will reach you."), "success")
    else:
        flash(_("Stripe still needs some details before it can pay you. Continue when you are ready."), "warning")
    return redirect(url_for("payouts.account"))


@bp.route("/me/campaigns/<slug>/payout")
@login_required
def campaign(slug: str):
    """A campaign's payout as its creator sees it: the figures from the ledger, when and what was paid."""
    found = own_or_403(slug)
    return render_template(
        "payouts/campaign.html", campaign=found, books=services.books(found), payout=services.payout_of(found),
        hold=services.open_hold(found), payout_date=services.payout_date(found), entries=services.ledger(found),
        account=services.account_for(current_user),
    )
