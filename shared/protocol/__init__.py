"""The wire protocol: request and response bodies, event envelopes.

One module per noun; zapd validates with these models and `shared.client` parses with
them, so both sides agree by construction. Field names are the JSON names.
"""

from shared.protocol.common import ErrorBody, Page, WireModel

__all__ = ["ErrorBody", "Page", "WireModel"]
