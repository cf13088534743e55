"""Secrets on the host: the encrypted store, placeholders for proxy mode, and redaction of outputs.

`store` keeps values encrypted at rest under ROOST_HOME; `placeholders`
names what a workspace sees for a proxy-mode secret. Redaction, which the
agent does too, is `roost.protocol.redaction`.

Imports: errors, store (atomic writes, locks) and `cryptography`; never the workspace layer.
"""
