"""The base of every form: Flask-WTF (CSRF) plus one rule for all text that reaches us."""
from __future__ import annotations

import re
from functools import cache

from babel import support
from flask_babel import get_locale
from flask_wtf import FlaskForm
from wtforms import FieldList, FormField
from wtforms.i18n import messages_path

#: A line break or tab with the blanks around it: one space in a one-line field.
_LINE_BREAKS = re.compile(r"\s*[\t\n]\s*")
# C0 controls but tab and newline, and DEL: never meant, and PostgreSQL refuses NUL in text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(value):
    """Filter for a one-line field: line breaks (and the blanks around them) become one space, control
    characters go, ends trimmed."""
    if not isinstance(value, str):
        return value
    return _LINE_BREAKS.sub(" ", _CONTROLS.sub("", value.replace("\r", "\n"))).strip()


def multi_line(value):
    """Filter for a multi-line field: one kind of line end, no control characters."""
    if not isinstance(value, str):
        return value
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def trimmed(value):
    """Filter: no blanks at either end."""
    return value.strip() if isinstance(value, str) else value


def _drop_nul(value):
    # A NUL byte is never meant, and PostgreSQL refuses it in text: it would turn any form into a 500.
    return value.replace("\x00", "") if isinstance(value, str) else value


@cache
def _wtforms_translations(locale: str) -> support.Translations:
    # WTForms' own messages ("This field is required.") in the visitor's language. Flask-WTF would
    # read and parse this catalog from disk on every request that builds a form; once per language is enough.
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class BaseForm(FlaskForm):
    """Every form of the app derives from this one."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            if issubclass(unbound_field.field_class, (FieldList, FormField)):  # filters apply to the fields inside
                return unbound_field.bind(form=form, **options)
            filters = [_drop_nul, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, **{**options, "filters": filters})

        def get_translations(self, form):
            return _wtforms_translations(str(get_locale() or "en"))

    def show_error(self, error: Exception) -> bool:
        """Put a service's refusal next to the field it names (its `field` attribute); False when it
        names none of this form's fields, for the caller to show it elsewhere."""
        field = getattr(self, getattr(error, "field", None) or "", None)
        if field is None or not hasattr(field, "errors"):
            return False
        field.errors = [*field.errors, str(error)]
        return True
