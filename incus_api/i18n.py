"""Message markers shared by code that must not import Flask.

``N_`` marks a message template for extraction (``pybabel extract -k N_``) without translating it;
``errors.py`` and the blueprints translate it for the request's language when they answer.
"""

LANGUAGES = ("zh", "en")  # the UI's languages, the first the default


def N_(message):
    return message
