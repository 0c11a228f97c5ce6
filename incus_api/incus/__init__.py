"""The Incus adapter: the REST client over the unix socket (``client``), the bounded exec with its
websocket streams (``exec``) and the browser console's interactive exec (``console``). No Flask,
no other adapter."""
