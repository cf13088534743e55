"""Ignore rules judged against git itself: the agent's walk must leave out exactly what git ignores.

Each case writes real ignore files into a real tree, walks it the way a
diff or export does (`dirtree.walk` pruned by an `IgnoreFilter`) and
compares what the walk left out with `git check-ignore` (patterns) or
`git ls-files --others --ignored` (nested files, info/exclude and
command-line patterns, whose precedence check-ignore cannot show) run on
the same tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.agent.fs.dirtree import DIR_READ_FLAGS, walk
from roost.agent.fs.ignore_filter import IgnoreFilter
from roost.protocol import OpError
from roost.protocol.ignore import IgnoreSpec, RuleChain, parse_lines
from roost.protocol.limits import MAX_IGNORE_FILE_BYTES

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is the oracle")
GIT_TIMEOUT = 30.0

# Files (directories follow from them); names chosen to meet the patterns' edge cases.
TREE = [
    "aa", "A.LOG", "Zz", "a b", "a ", "#hash", "!bang", "[x]", "q?", "star*", "bs\\x", "caret^", "under_score",
    "b.log", "x/a.log", "x/y/z.log", "x/build", "x.d/y",
    "build/out.o", "build/keep.txt", "src/build/g.o",
    "foo/bar", "foo/x", "foo/a/bar", "foo/a/b/bar", "foobar/bar", "foo-x/bar", "deep/er/foo/q",
    "a/b", "a/x/b", "a/x/y/b", "b/x", "abc/def",
    "doc/notes.txt", "doc/server/arch.txt",
    "node_modules/p/index.js", "sub/node_modules/q.js",
]  # fmt: skip

# One .gitignore per case, as its lines.
PATTERNS = [
    ["*.log"], ["*.log", "!x"], ["build/"], ["build/", "!build/keep.txt"], ["build", "!build/keep.txt"],
    ["/build"], ["*/build"], ["x/*"], ["x/y/"], ["x.d/"], ["b.log/"],
    ["foo/**"], ["foo/**", "!foo/x"], ["foo/**/"], ["foo/**/bar"], ["**/bar"], ["**/foo/q"], ["a/**/b"],
    ["a/***/b"], ["foo**/bar"], ["foo/a/**/bar"], ["/foo/*/bar"], ["foo/**/b/*"], ["deep/**/foo/"],
    ["**"], ["*"], ["*/"], ["**/"], ["***"], ["/**"], ["/**/z.log"], ["**/y/**"], ["**y/*"],
    ["/*", "!/foo", "/foo/*", "!/foo/bar"], ["*", "!*/", "!*.log"], ["!*.log", "*.log"], ["*.log", "!*.log"],
    ["*.log", "!x/"], ["*.log", "!/x", "x/y/"], ["doc/", "!doc/notes.txt"], ["doc/*", "!doc/server"],
    ["foo", "!foo/"], ["**/build/", "!src/build"], ["/x/y", "!x"], ["x/y", "!x"], ["x/**", "!x/y/"],
    ["doc/*.txt"], ["doc/**/*.txt"], ["x*/**/*.log"], ["**/node_modules"], ["node_modules/"],
    ["/node_modules/"], ["**/*.log"], ["x/**/*.log"], ["*.log/"],
    ["\\#hash"], ["#hash"], ["\\!bang"], ["!bang"], ["[x]"], ["\\[x]"], ["a\\ "], ["a "], ["a\\\\"], ["aa\t"],
    ["q?"], ["q\\?"], ["star\\*"], ["bs\\\\x"], ["caret^"], ["*.LOG"], ["?"], ["??"], ["?*?"], ["a*b"], ["*_*"],
    ["[a-c]"], ["[!a]"], ["[^a]*"], ["[]]"], ["[a-]"], ["[z-a]*"], ["[!a-z]*"], ["[!]a]*"], ["[]-a]*"],
    ["[--z]*"], ["[\\]]*"], ["[\\^]*"], ["[a\\-z]*"], ["[[:alpha:]]"], ["[[:digit:]]*"], ["[[:upper:]]z"],
    ["[[:space:]]"], ["[[:alpha:]-z]*"], ["[a-[:digit:]]*"], ["[[:bogus:]]"], ["[[:alpha:]"], ["[abc"],
    ["[[:]"], ["[[::]]*"], ["[[:]]*"], ["a["], ["a\\"], ["\\\\*"],
    ["/"], ["!"], [" "], ["foo/"], ["foo//"],
]  # fmt: skip


def git(root: Path, *args: str, stdin: bytes = b"") -> bytes:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),  # no user's core.excludesFile
        "XDG_CONFIG_HOME": str(root / ".git" / "no-config"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(["git", *args], cwd=root, env=env, input=stdin, capture_output=True, timeout=GIT_TIMEOUT)
    assert done.returncode in (0, 1), done.stderr  # 1: nothing ignored
    return done.stdout


def every_path(root: Path, *, with_git: bool = False) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames and not with_git:
            dirnames.remove(".git")
        found.update(os.path.relpath(os.path.join(dirpath, name), root) for name in dirnames + filenames)
    return found


def left_out(root: Path, spec: IgnoreSpec, *, with_git: bool = False) -> set[str]:
    """What a walk pruned by `spec` does not reach (everything below a pruned directory included).

    The repository's own `.git` counts only `with_git`: git never looks inside it.
    """
    top = os.open(root, DIR_READ_FLAGS)
    try:
        reached = {found.rel for found in walk(top, prune=IgnoreFilter(spec))}
    finally:
        os.close(top)
    return every_path(root, with_git=with_git) - reached


def make_tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    git(root, "init", "-q")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree"), TREE)


def _case_id(lines: list[str]) -> str:
    return " | ".join(lines).encode("unicode_escape").decode() or "empty"


@needs_git
@pytest.mark.parametrize("lines", PATTERNS, ids=_case_id)
def test_a_gitignore_leaves_out_exactly_what_git_check_ignore_reports(tree: Path, lines: list[str]) -> None:
    ignore_file = tree / ".gitignore"
    ignore_file.write_text("".join(f"{line}\n" for line in lines))
    try:
        paths = sorted(every_path(tree))
        reported = git(tree, "check-ignore", "--no-index", "--stdin", "-z", stdin="\0".join(paths).encode())
        by_git = {p.decode() for p in reported.split(b"\0") if p}

        assert left_out(tree, IgnoreSpec(gitignore=True, include_git_dir=False)) == by_git
    finally:
        ignore_file.unlink()


# -- several ignore files, info/exclude and the caller's patterns: git ls-files as the oracle ----------


def git_ignored_files(root: Path, exclude: tuple[str, ...], standard: bool) -> set[str]:
    args = ["ls-files", "-z", "--others", "--ignored", *(["--exclude-standard"] if standard else [])]
    args += [f"--exclude={pattern}" for pattern in exclude]
    return {p.decode() for p in git(root, *args).split(b"\0") if p}


SCENARIOS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "a nested file ranks above its parents' and re-includes": (
        {".gitignore": "*.log\nbuild/\nlocal\n", "sub/.gitignore": "!keep.log\n/local\n"},
        (),
    ),
    "a directory re-included below is walked and its own file read": (
        {".gitignore": "generated\n", "a/.gitignore": "!generated\n", "a/generated/.gitignore": "*.tmp\n"},
        (),
    ),
    "info/exclude ranks below every .gitignore": (
        {".git/info/exclude": "*.txt\nsecret*\n", ".gitignore": "!notes.txt\n"},
        (),
    ),
    "an ignore file inside an ignored directory is never read": (
        {".gitignore": "cache/\n", "cache/.gitignore": "!*\n"},
        (),
    ),
    "the caller's patterns rank above every file's": (
        {".gitignore": "*.md\n!README.md\nbuild/\n"},
        ("README.md", "!build/", "*.tmp", "!sub/x.tmp"),
    ),
    "the caller's patterns alone, no ignore files read": (
        {".gitignore": "*.log\n"},
        ("sub/", "/local", "*.tmp"),
    ),
    "a CRLF file with a BOM and escaped trailing spaces": (
        {".gitignore": "\ufeff*.log\r\nkeep\\ \r\n# a comment\r\n\r\nlocal  \r\n"},
        (),
    ),
}
FILES = [
    "README.md", "notes.md", "notes.txt", "other.txt", "secret.key", "sub/secret.md", "x.log", "sub/x.log",
    "sub/keep.log", "local", "sub/local", "sub/deeper/local", "build/a", "sub/build/b", "x.tmp", "sub/x.tmp",
    "generated/g.c", "a/generated/g.c", "a/generated/g.tmp", "cache/c.bin", "keep ", "keep",
]  # fmt: skip


@needs_git
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_ignore_files_at_every_level_and_given_patterns_leave_out_what_git_ls_files_reports(
    tmp_path: Path, scenario: str
) -> None:
    files, exclude = SCENARIOS[scenario]
    root = make_tree(tmp_path / "repo", FILES)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    standard = scenario != "the caller's patterns alone, no ignore files read"

    ours = left_out(root, IgnoreSpec(exclude=exclude, gitignore=standard, include_git_dir=False))

    files_left_out = {p for p in ours if (root / p).is_file()}
    assert files_left_out == git_ignored_files(root, exclude, standard)
    assert files_left_out, "each scenario leaves something out"


@needs_git
def test_a_gitignore_that_is_a_symlink_is_not_read_as_git_refuses_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "repo", ["sub/x.log", "y.log", "rules"])
    (root / "rules").write_text("*.log\n")
    (root / "sub" / ".gitignore").symlink_to("../rules")
    (root / ".gitignore").write_text("y.log\n")

    ours = left_out(root, IgnoreSpec(gitignore=True, include_git_dir=False))

    assert ours == {"y.log"} == git_ignored_files(root, (), standard=True)


# -- the filter's own promises --------------------------------------------------------------------------


class EnteredDirs:
    """A pruner that records which directories the walk opened, passing every judgement on."""

    def __init__(self, inner: IgnoreFilter) -> None:
        self.inner = inner
        self.entered: list[str] = []

    def enter(self, prefix: str, dir_fd: int) -> None:
        self.entered.append(prefix)
        self.inner.enter(prefix, dir_fd)

    def excluded(self, prefix: str, name: str, is_dir: bool) -> bool:
        return self.inner.excluded(prefix, name, is_dir)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "repo"
    for rel in ("node_modules/a/b/index.js", "src/app.js", "src/node_modules/c.js", ".git/HEAD", "sub/.git"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    yield root


def test_an_excluded_directory_is_never_opened(repo: Path) -> None:
    spying = EnteredDirs(IgnoreFilter(IgnoreSpec(exclude=("node_modules/",))))
    top = os.open(repo, DIR_READ_FLAGS)
    try:
        reached = {found.rel for found in walk(top, prune=spying)}
    finally:
        os.close(top)

    assert not [p for p in spying.entered if "node_modules" in p]
    assert not [p for p in reached if "node_modules" in p]
    assert {"src/app.js", "src", "sub"} <= reached


def test_every_entry_named_git_is_left_out_unless_kept(repo: Path) -> None:
    assert left_out(repo, IgnoreSpec(include_git_dir=False), with_git=True) == {".git", ".git/HEAD", "sub/.git"}
    assert left_out(repo, IgnoreSpec(), with_git=True) == set()


def test_paths_a_walk_never_reached_are_judged_below_the_nearest_directory_it_entered(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.o\nsrc/gen/\n")
    rules = IgnoreFilter(IgnoreSpec(gitignore=True))
    top = os.open(repo, DIR_READ_FLAGS)
    try:
        list(walk(top, prune=rules))
    finally:
        os.close(top)

    # As for the paths of a snapshot that are gone from the tree now.
    assert rules.excluded_path("gone/deep/x.o", is_dir=False)
    assert rules.excluded_path("src/gen/old/file.c", is_dir=False)
    assert not rules.excluded_path("gone/deep/x.c", is_dir=False)
    assert rules.excluded_path("node_modules", is_dir=True) is False, "only --exclude or .gitignore exclude it"


def test_an_ignore_file_past_the_size_limit_is_an_invalid_argument_naming_it(repo: Path) -> None:
    (repo / "src" / ".gitignore").write_bytes(b"#" * (MAX_IGNORE_FILE_BYTES + 1))
    top = os.open(repo, DIR_READ_FLAGS)
    try:
        with pytest.raises(OpError) as caught:
            list(walk(top, prune=IgnoreFilter(IgnoreSpec(gitignore=True))))
    finally:
        os.close(top)
    assert caught.value.code == "invalid_argument"
    assert "/workspace/src/.gitignore" in caught.value.message and caught.value.hint


def test_a_chain_of_many_patterns_decides_by_the_last_match_in_one_regex_call() -> None:
    lines = [f"file{i}.txt" for i in range(2000)] + ["!file1999.txt", "*.tmp", "!keep.tmp"]
    chain = RuleChain(parse_lines("\n".join(lines).encode()))

    assert chain.decide(b"d/file7.txt", b"file7.txt", False) is True
    assert chain.decide(b"file1999.txt", b"file1999.txt", False) is False
    assert chain.decide(b"keep.tmp", b"keep.tmp", False) is False
    assert chain.decide(b"other", b"other", True) is None
