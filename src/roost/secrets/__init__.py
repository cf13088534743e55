"""Secrets on the host: the encrypted store, placeholders for proxy mode, and redaction of outputs.

`store` keeps values encrypted at rest under ROOST_HOME; `redaction` turns a
value and its common encodings into `[redacted:NAME]` on every output
channel; `placeholders` names what a workspace sees for a proxy-mode secret.

Imports: errors, store (atomic writes, locks) and `cryptography`; never the workspace layer.
"""
