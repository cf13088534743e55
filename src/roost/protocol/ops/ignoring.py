"""The ignore-rule arguments a diff or an export takes: `exclude` patterns, `gitignore`, `include_git_dir`.

Imports: this package's `message`, protocol's `ignore` and `limits`; standard library only.
"""

from __future__ import annotations

from roost.protocol.ignore import IgnoreSpec
from roost.protocol.limits import MAX_EXCLUDE_PATTERN_BYTES, MAX_EXCLUDE_PATTERNS
from roost.protocol.ops.message import Message, invalid, message, wire

__all__ = ["IgnoreArgs"]


@message
class IgnoreArgs(Message):
    """What a diff or an export leaves out (nothing, by default)."""

    exclude: tuple[str, ...] = wire(())
    gitignore: bool = wire(False)
    include_git_dir: bool = wire(True)

    def check(self) -> None:
        if len(self.exclude) > MAX_EXCLUDE_PATTERNS or not all(
            0 < len(p.encode("utf-8", "surrogateescape")) <= MAX_EXCLUDE_PATTERN_BYTES for p in self.exclude
        ):
            raise invalid(
                f"'exclude' must be a list of at most {MAX_EXCLUDE_PATTERNS} patterns "
                f"of 1 to {MAX_EXCLUDE_PATTERN_BYTES} bytes",
                hint="give fewer or shorter patterns, e.g. ['*.log', 'build/']",
            )

    @property
    def ignore(self) -> IgnoreSpec:
        return IgnoreSpec(self.exclude, self.gitignore, self.include_git_dir)
