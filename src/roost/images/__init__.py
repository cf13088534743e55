"""Environments and their images.

`catalog` names the known envs; `cache` keeps their root filesystems by content;
`manager` gets one into the cache from the configured sources: pulled from an
OCI registry (`registry_source`, `oci`, `layers`) or built from apt's Debian
mirror (`build`, with `idshift` for copies a user namespace owns). `vm`
builds what a microVM boots from an env's rootfs (kernel, initramfs, disk).
"""
