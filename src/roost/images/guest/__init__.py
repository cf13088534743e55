"""Guest images for microVM backends: kernel, initramfs and root disk, built from Debian packages and cached."""
