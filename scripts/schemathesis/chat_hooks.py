"""schemathesis hooks for this service (loaded through SCHEMATHESIS_HOOKS):
two fixes of the HTTP client side, none of what is checked.

* A socket operation's handshake switches its connection to the WebSocket
  protocol (101 Switching Protocols), after which the connection no longer
  speaks HTTP (RFC 9110, 15.2.2). requests would still hand it back to its pool
  and send the next HTTP request on it; such a connection is closed instead.
* The stateful phase's inferred links can put a number taken from a response
  (an id) into a header, which requests refuses to send at all; a header value
  goes out as its text, as any HTTP client sends it.
"""

import requests.adapters
import schemathesis

_build_response = requests.adapters.HTTPAdapter.build_response


def _build_response_closing_switched(self, req, resp):
    response = _build_response(self, req, resp)
    if resp.status == 101:
        connection = getattr(resp, "connection", None)
        if connection is not None:
            connection.close()
    return response


requests.adapters.HTTPAdapter.build_response = _build_response_closing_switched


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.headers:
        for name, value in list(case.headers.items()):
            if not isinstance(value, str):
                case.headers[name] = str(value)
