"""The customer's browser console, in the panel: the admin's console (``service.console``, the
relay and the page script ``static/console.js``) on a WebSocket of the customer's session.

Before the handshake, as for the admin's: the ``Origin`` must be this host's, the session a
customer's (``load_customer`` ran first: 401 otherwise), and the container must have a console
place left (429, ``CONSOLE_PER_CONTAINER``). The console opens only on the instance the link was
made for (``uuid``), only while it runs and is not suspended (``ConsoleService.check_open``), and
its audit entry's actor is ``customer:<container>``.
"""
from flask import g, request

from ...exceptions import Forbidden
from ...i18n import N_
from ..dashboard.console import run_console, same_origin, sock
from . import bp
from .views import services

SOCKET_ENDPOINT = "customer.console_socket"


@bp.before_request
def guard_console_socket():
    if request.endpoint != SOCKET_ENDPOINT:
        return
    if not same_origin():
        raise Forbidden(N_("The console accepts connections from its own pages only"))
    customer = g.customer
    g.console_grant = (customer.name, customer.actor, customer.instance_uuid)
    services().console.check_room(customer.name)  # 429 before the handshake


@sock.route("/console/ws", bp=bp)
def console_socket(ws):
    run_console(ws)
