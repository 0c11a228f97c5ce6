"""The customer's panel (issue 19): ``/customer/<token>`` signs a browser in from a one-time link,
``/customer`` and everything under it act on that one container only.

Who the customer is comes from the ``customer_session`` cookie (scoped to ``/customer``, so it is
never even sent to the admin's pages or the API), checked by ``load_customer`` before every view
but the link's; the container is the session's, never a URL's or a form's. Admin pages and API
routes know nothing of this cookie: a customer reaching them is just an anonymous browser.
"""
from flask import Blueprint

bp = Blueprint("customer", __name__, url_prefix="/customer")

from . import forwards, views  # noqa: E402,F401 - registers the routes
