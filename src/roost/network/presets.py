"""Named destination lists for `allowlist` policies: `@pypi`, `@npm`, `@debian`, `@github`.

Each preset lists the hosts (and ports) its tool really talks to when it
installs or fetches, found by watching the tools' requests; docs/network.md
shows the same lists. A preset is expanded where the policy is parsed, so a
stored policy names its hosts, not the preset.

This module imports nothing.
"""

from __future__ import annotations

PRESETS: dict[str, tuple[str, ...]] = {
    # pip: the index (simple API) and the file host it redirects downloads to.
    "pypi": ("pypi.org:443", "files.pythonhosted.org:443"),
    # npm and yarn (v1 and berry use the same two registries).
    "npm": ("registry.npmjs.org:443", "registry.yarnpkg.com:443"),
    # apt on Debian 12: the CDN for the main archive and security updates (deb.debian.org/debian-security),
    # security.debian.org for older sources lists; apt speaks plain HTTP by default.
    "debian": (
        "deb.debian.org:80",
        "deb.debian.org:443",
        "security.debian.org:80",
        "security.debian.org:443",
    ),
    # git over HTTPS and SSH, the API, archive downloads, raw files and release assets, the container registry.
    "github": (
        "github.com:443",
        "github.com:22",
        "ssh.github.com:443",
        "api.github.com:443",
        "codeload.github.com:443",
        "uploads.github.com:443",
        "*.githubusercontent.com:443",
        "ghcr.io:443",
    ),
}
