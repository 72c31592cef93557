"""The Courier crypto core: the Python half of the protocol in ``docs/protocol.md``.

One module per concern:

- ``encoding``: base64url, integers, canonical JSON, the injectable random source
- ``primitives``: thin, checked wrappers around ``cryptography`` (the only primitives we use)
- ``identity``: identity keys, prekeys, bundle creation and verification
- ``pqxdh``: the PQXDH key agreement (initiator and responder)
- ``ratchet``: the Double Ratchet with header encryption
- ``state``: session state and its versioned byte serialization
- ``envelope``: padding to bucket sizes and the envelope wrapping
- ``sealed``: the sealed first message to an intro mailbox
- ``files``: file-chunk encryption
- ``messages``: the plaintext payloads carried inside the ratchet
- ``link``: the contact link
- ``safety``: safety numbers and their QR payload
- ``vectors``: the deterministic protocol test vectors (``python -m courier.crypto.vectors``)
"""

from __future__ import annotations
