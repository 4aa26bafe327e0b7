"""The base of every form: Flask-WTF (CSRF) plus one rule for all text that reaches us."""
from __future__ import annotations

from flask_wtf import FlaskForm


def _drop_nul(value):
    # A NUL byte is never meant, and PostgreSQL refuses it in text: it would turn any form into a 500.
    return value.replace("\x00", "") if isinstance(value, str) else value


class BaseForm(FlaskForm):
    """Every form of the app derives from this one."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            filters = [_drop_nul, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, **{**options, "filters": filters})
