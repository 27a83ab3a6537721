"""Django's own strings that this project words differently in its catalog.

Nothing imports this module: it only puts these msgids into
``webmail/locale/*/LC_MESSAGES/django.po`` (``makemessages`` reads every module),
and catalogs in LOCALE_PATHS win over Django's. French mail programs write
sizes as "Ko", "Mo", "Go" (Django's French says "Kio", "Mio", "Gio").
"""

from django.utils.translation import gettext_noop

# The units of the filesizeformat filter (binary multiples, as Django computes them).
FILE_SIZE_UNITS = (
    gettext_noop("%s KB"),
    gettext_noop("%s MB"),
    gettext_noop("%s GB"),
    gettext_noop("%s TB"),
    gettext_noop("%s PB"),
)
