"""E-mail addresses a tenant gives (recipients, the sender): one plain address each.

An allow-list, not a parser: no display names, comments or several addresses
in one field, so nothing a tenant writes can add a header or a recipient.
"""

from __future__ import annotations

import re

from flywheel.server.errors import InvalidInput

ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def check_address(address: str, field: str) -> str:
    if len(address) > 254 or not ADDRESS.match(address):
        raise InvalidInput("an e-mail address is one plain address (name@example.com)", field=field,
                           code="invalid_address")
    return address
