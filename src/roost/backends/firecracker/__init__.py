"""The firecracker backend: workspaces as KVM microVMs, the guest agent reached over vsock.

`backend` holds the `Backend` implementation; `api` the VMM's HTTP API client,
`vsock` the host-side vsock handshake, `vm` one VMM process's files and
lifecycle, `binary` finding and installing Firecracker itself. This package
imports nothing heavy at import time: `roost doctor` and backend selection
load only `backend` and `binary`.
"""
