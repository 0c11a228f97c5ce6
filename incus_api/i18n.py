"""Message markers shared by code that must not import Flask.

``N_`` marks a message template for extraction (``pybabel extract -k N_``) without translating it;
``errors.py`` and the blueprints translate it for the request's language when they answer.
"""


def N_(message):
    return message
