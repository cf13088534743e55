"""Host-side building of what a microVM boots: the guest kernel, initramfs and root disk, from Debian
packages, cached (and booted under QEMU for the real-VM check).

Not to be confused with `roost.guest` (roost's PID 1, which runs inside the VM and ships on the disk
built here) or `roost.agent` (the workspace agent, shipped the same way).
"""
