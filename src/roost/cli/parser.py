"""The `roost` command line grammar. Each leaf names its handler as "module:function"
so only the code a command needs is imported.

A command line the grammar refuses raises `UsageError` instead of exiting, so
the entry point reports it like every other error (`invalid_argument`, and a
JSON document with `--json`).

Imports: serve_options (the grammar `roost mcp serve` shares with `python -m roost.mcp`),
its sibling mcp_clients (the clients `roost mcp config` knows) and the standard library.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from roost.cli.mcp_clients import CLIENTS
from roost.serve_options import PROFILE_NAMES, add_serve_arguments

MCP_CLIENTS = tuple(CLIENTS)

_H = "roost.cli.commands"


class UsageError(Exception):
    """argparse refused the command line; `usage` is the refusing (sub)command's usage text."""

    def __init__(self, message: str, prog: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.prog = prog
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and subparsers, which inherit the class) that raises instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog, self.format_usage())


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _ws(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WS", help="workspace id, unique id prefix, or name")


def _custom_env_commands(env: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`env create` (a recipe on a parent env) and `env remove`."""
    create = _leaf(env, "create", f"{_H}.envs:env_create", "build a custom env from a recipe", workspace=False)
    create.add_argument("env_name", metavar="NAME", help="the new env's name, e.g. myproject or myproject:1")
    origin = create.add_mutually_exclusive_group(required=True)
    origin.add_argument("--from", dest="parent", metavar="ENV", help="the parent env, e.g. debian:12")
    origin.add_argument("-f", "--file", dest="recipe_file", metavar="TOML", help="a roost-env.toml recipe")
    for flag, what in (("--apt", "PKG"), ("--pip", "PKG"), ("--npm", "PKG"), ("--run", "CMD")):
        create.add_argument(flag, action="append", default=[], metavar=what, help=f"{flag[2:]} step (repeatable)")
    create.add_argument("--copy", action="append", default=[], metavar="SRC:DEST", help="host path into the env")
    create.add_argument("--env", action="append", default=[], metavar="K=V", help="variable for steps and workspaces")
    create.add_argument(
        "--allow-host", action="append", default=[], metavar="HOST", help="more hosts the build may reach"
    )
    create.add_argument("--replace", action="store_true", help="point an existing name at this recipe")
    remove = _leaf(env, "remove", f"{_H}.envs:env_remove", "remove a custom env", workspace=False)
    remove.add_argument("env_name", metavar="NAME")


def _leaf(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: str,
    help_text: str,
    *,
    workspace: bool = True,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    _json_flag(parser)
    if workspace:
        _ws(parser)
    return parser


def _exec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cwd", help="working directory inside the workspace (default /workspace)")
    parser.add_argument("--timeout", type=float, help="kill the command after S seconds")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="environment variable (repeatable)")
    parser.add_argument("--stdin", choices=["-"], help="pass this process's stdin to the command")
    parser.add_argument("-c", "--shell", metavar="SCRIPT", help="run SCRIPT with bash -c instead of an argv")
    parser.add_argument(
        "argv", nargs="*", metavar="CMD", help="the command and its arguments (the options before it are roost's)"
    )


def _secret_uses(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME[=VAR]",
        help="give this process an attached secret in variable VAR (default NAME) (repeatable)",
    )
    parser.add_argument(
        "--secret-file",
        action="append",
        default=[],
        metavar="NAME[=VAR|=PATH]",
        help="give it an attached secret as a 0400 file on a tmpfs (at PATH, outside /workspace, if given), "
        "its path in VAR (default ROOST_SECRET_FILE_NAME), removed when it ends (repeatable)",
    )


def _secret_commands(
    top: argparse._SubParsersAction[argparse.ArgumentParser], wsub: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    h = f"{_H}.secrets"
    store = top.add_parser("secret", help="the host's encrypted secret store").add_subparsers(
        dest="secret_command", metavar="ACTION"
    )
    set_ = _leaf(
        store, "set", f"{h}:secret_set", "store a secret (value from stdin, a file or a variable)", workspace=False
    )
    set_.add_argument("name", metavar="NAME")
    source = set_.add_mutually_exclusive_group()
    source.add_argument("--from-file", metavar="F", help="read the value from host file F")
    source.add_argument("--from-env", metavar="VAR", help="read the value from this process's variable VAR")
    set_.add_argument(
        "--mode",
        action="append",
        default=None,
        choices=["env", "file", "proxy"],
        help="allowed mode (default env, file)",
    )
    set_.add_argument("--host", action="append", default=[], metavar="H", help="a host proxy mode may send it to")
    set_.add_argument(
        "--in-body", action="store_true", help="proxy mode: replace the placeholder in request bodies too"
    )
    _leaf(
        store, "list", f"{h}:secret_list", "list secrets: names, modes, hosts, when set (never values)", workspace=False
    )
    delete = _leaf(store, "delete", f"{h}:secret_delete", "remove a secret from the store", workspace=False)
    delete.add_argument("name", metavar="NAME")

    attached = wsub.add_parser("secret", help="secrets attached to a workspace").add_subparsers(
        dest="ws_secret_command", metavar="ACTION"
    )
    add = _leaf(attached, "add", f"{h}:workspace_secret_add", "attach secrets of the store, live")
    add.add_argument("entries", nargs="+", metavar="NAME[:MODE]")
    remove = _leaf(attached, "remove", f"{h}:workspace_secret_remove", "detach a secret")
    remove.add_argument("name", metavar="NAME")
    _leaf(attached, "list", f"{h}:workspace_secret_list", "the attached secrets and their modes")


def _create_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", help="firecracker, sandbox or mock (default: best available)")
    parser.add_argument("--vcpus", type=int, help="virtual CPUs (firecracker); CPU time quota in the sandbox")
    parser.add_argument(
        "--mem-mib", type=int, help="memory in MiB, tmpfs included (firecracker default 1024, sandbox 2048)"
    )
    parser.add_argument("--pids", type=int, help="most processes at once (sandbox; default 1024)")


def _shell_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shell = wsub.add_parser("shell", help="interactive PTY shells that persist between calls")
    sub = shell.add_subparsers(dest="shell_command", metavar="ACTION")
    h = f"{_H}.shells"
    sopen = _leaf(sub, "open", f"{h}:shell_open", "start a bash on a PTY; prints its id")
    sopen.add_argument("--cwd", help="starting directory (default /workspace)")
    sopen.add_argument("--cols", type=int, default=120)
    sopen.add_argument("--rows", type=int, default=32)
    sopen.add_argument("--env", action="append", default=[], metavar="K=V")
    _secret_uses(sopen)
    sopen.add_argument("--id-only", action="store_true", help="print only the shell id")
    _leaf(sub, "list", f"{h}:shell_list", "list shells (running, exited, closed, lost)")
    read = _leaf(sub, "read", f"{h}:shell_read", "print output from a byte cursor")
    read.add_argument("shell", metavar="SH")
    read.add_argument("--cursor", type=int, default=0, help="byte offset to read from (see next_cursor)")
    read.add_argument("--max-bytes", type=int, default=65536)
    read.add_argument("--plain", action="store_true", help="strip terminal control sequences")
    wait = read.add_mutually_exclusive_group()
    wait.add_argument(
        "--until-idle-ms",
        "--wait-for-idle-ms",
        dest="until_idle_ms",
        type=int,
        metavar="N",
        help="first wait until output is quiet for N ms",
    )
    wait.add_argument("--until-pattern", metavar="RE", help="first wait until RE matches the plain text after --cursor")
    wait.add_argument(
        "--until-command-done", action="store_true", help="first wait until the command written last has finished"
    )
    read.add_argument("--timeout-ms", type=int, help="give up waiting after this long (default 10000)")
    write = _leaf(sub, "write", f"{h}:shell_write", "type into a shell")
    write.add_argument("shell", metavar="SH")
    given = write.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", help="text to type (a newline is added)")
    given.add_argument("--stdin", action="store_true", help="send this process's stdin as raw bytes")
    write.add_argument("--no-newline", action="store_true", help="do not press Enter after --input")
    write.add_argument(
        "--and-wait", action="store_true", help="wait until the command has finished; print its output and status"
    )
    write.add_argument(
        "--timeout-ms", type=int, help="with --and-wait: give up waiting after this long (default 10000)"
    )
    write.add_argument("--max-bytes", type=int, default=65536, help="with --and-wait: print at most this much output")
    write.add_argument("--plain", action="store_true", help="with --and-wait: strip terminal control sequences")
    sig = _leaf(sub, "signal", f"{h}:shell_signal", "signal the shell's foreground job")
    sig.add_argument("shell", metavar="SH")
    sig.add_argument("--signal", default="INT", choices=["INT", "TERM", "HUP", "KILL", "QUIT"])
    resize = _leaf(sub, "resize", f"{h}:shell_resize", "change the terminal size")
    resize.add_argument("shell", metavar="SH")
    resize.add_argument("--cols", type=int, required=True)
    resize.add_argument("--rows", type=int, required=True)
    close = _leaf(sub, "close", f"{h}:shell_close", "end a shell (HUP, then KILL after a short grace)")
    close.add_argument("shell", metavar="SH")
    attach = _leaf(sub, "attach", f"{h}:shell_attach", "connect this terminal to a shell (Ctrl-] detaches)")
    attach.add_argument("shell", metavar="SH", nargs="?", help="default: the newest running shell, or a new one")


def _network_options(parser: argparse.ArgumentParser, policy_flag: str | None, default: str | None) -> None:
    if policy_flag is not None:
        parser.add_argument(
            policy_flag,
            dest="network_policy",
            default=default,
            metavar="POLICY",
            help="off (loopback only), egress (outbound anywhere) or allowlist (only --allow-host)"
            + (f"; default {default}" if default else "; default: as it is"),
        )
        parser.add_argument(
            "--allow-host",
            "--allow",
            dest="allow_host",
            action="append",
            default=None,
            metavar="H",
            help="allowlist entry: name, *.suffix, IPv4 CIDR, each [:PORT], or @pypi @npm @debian @github (repeatable)",
        )
    parser.add_argument(
        "--publish",
        action="append",
        default=None,
        metavar="[ADDR:][HP:]GP",
        help="serve guest port GP on the host's 127.0.0.1 (or ADDR in 127/8), port HP (default: any free) (repeatable)",
    )


def _network_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    network = wsub.add_parser("network", help="a workspace's network policy, published ports and decision log")
    sub = network.add_subparsers(dest="network_command", metavar="ACTION")
    h = f"{_H}.network"
    _leaf(sub, "show", f"{h}:network_show", "show the policy, the published ports and whether they are enforced")
    set_ = _leaf(sub, "set", f"{h}:network_set", "change the policy or the published ports, live (no restart)")
    _network_options(set_, "--policy", None)
    set_.add_argument("--no-publish", action="store_true", help="unpublish the workspace's own ports")
    log = _leaf(sub, "log", f"{h}:network_log", "the decisions on the workspace's lookups and connections")
    log.add_argument("--denied", action="store_true", help="only what was refused")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing new decisions (Ctrl-C stops)")
    log.add_argument("--limit", type=int, metavar="N", help="only the last N decisions")


def _service_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    service = wsub.add_parser("service", help="named background services with readiness probes")
    sub = service.add_subparsers(dest="service_command", metavar="ACTION")
    h = f"{_H}.services"
    start = _leaf(sub, "start", f"{h}:service_start", "start a service and wait until it is ready")
    start.add_argument("name", metavar="NAME", help="[a-z0-9][a-z0-9_.-]{0,62}")
    start.add_argument("--cwd", help="working directory (default /workspace)")
    start.add_argument("--env", action="append", default=[], metavar="K=V")
    _secret_uses(start)
    start.add_argument("--ready-file", metavar="PATH", help="ready once this path exists")
    start.add_argument("--ready-tcp", metavar="[HOST:]PORT", help="ready once a TCP connect succeeds")
    start.add_argument("--ready-http", metavar="URL", help="ready once GET answers 2xx/3xx")
    start.add_argument("--ready-command", metavar="CMD", help="ready once CMD exits 0")
    start.add_argument("--ready-timeout", type=float, default=30.0, metavar="S", help="give up after S seconds")
    start.add_argument("--ready-interval-ms", type=int, default=100, metavar="N", help="probe every N ms")
    start.add_argument("--restart", choices=["no", "on-failure", "always"], default="no")
    _network_options(start, None, None)
    start.add_argument("-c", "--shell", metavar="SCRIPT", help="run SCRIPT with bash -c instead of an argv")
    start.add_argument("argv", nargs="*", metavar="-- CMD", help="the command and its arguments, after --")
    _leaf(sub, "list", f"{h}:service_list", "list services and their states")
    status = _leaf(sub, "status", f"{h}:service_status", "show one service")
    status.add_argument("name", metavar="NAME")
    logs = _leaf(sub, "logs", f"{h}:service_logs", "print a service's captured output")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("--stream", choices=["stdout", "stderr", "both"], default="both")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new output (Ctrl-C stops)")
    stop = _leaf(sub, "stop", f"{h}:service_stop", "TERM the service's process group, KILL after the grace period")
    stop.add_argument("name", metavar="NAME")
    stop.add_argument("--timeout", type=float, metavar="S", help="grace period before KILL (default 10)")


def _ignore_options(parser: argparse.ArgumentParser, *, git_dir: str) -> None:
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching this gitignore pattern, relative to /workspace (repeatable)",
    )
    parser.add_argument(
        "--gitignore", action="store_true", help="also honour .gitignore files and .git/info/exclude, as git does"
    )
    parser.add_argument(
        "--include-git-dir", action="store_true", default=None, help=f"keep .git (by default {git_dir})"
    )


def _change_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = f"{_H}.changes"
    diff = _leaf(wsub, "diff", f"{h}:diff", "what changed in /workspace since the baseline or a snapshot")
    diff.add_argument("--against", default="baseline", metavar="SNAPSHOT", help="baseline (default) or a snapshot")
    diff.add_argument("--stat", action="store_true", help="only the summary of changed paths")
    diff.add_argument("--path", action="append", default=[], metavar="P", help="only changes under P (repeatable)")
    diff.add_argument("--max-bytes", type=int, default=1024 * 1024, help="cap on the patch text (default 1 MiB)")
    _ignore_options(diff, git_dir="left out only under --gitignore")
    export = _leaf(wsub, "export", f"{h}:export", "copy a workspace path out to a new host path")
    export.add_argument("path", metavar="PATH", help="file or directory in /workspace")
    export.add_argument("--output", "-o", required=True, metavar="OUT", help="host path; must not exist")
    export.add_argument(
        "--format",
        choices=["dir", "tar", "patch"],
        default="dir",
        help="dir: the files (default); tar: one archive; patch: the diff against the baseline",
    )
    _ignore_options(export, git_dir="left out of a patch and under --gitignore")
    snap = wsub.add_parser("snapshot", help="named checkpoints of /workspace")
    sub = snap.add_subparsers(dest="snapshot_command", metavar="ACTION")
    for action, text in (("create", "checkpoint /workspace under NAME"), ("delete", "remove snapshot NAME")):
        leaf = _leaf(sub, action, f"{h}:snapshot_{action}", text)
        leaf.add_argument("name", metavar="NAME")
    _leaf(sub, "list", f"{h}:snapshot_list", "list snapshots (baseline first)")
    reset = _leaf(wsub, "reset", f"{h}:reset", "restore /workspace to the baseline or a snapshot")
    reset.add_argument("--snapshot", default="baseline", metavar="NAME")


def _disk_commands(wsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = f"{_H}.disk"
    disk = wsub.add_parser("disk", help="a stopped workspace's disk, read without booting it")
    sub = disk.add_subparsers(dest="disk_command", metavar="ACTION")
    dlist = _leaf(sub, "list", f"{h}:disk_list", "list a directory on the disk (links listed, never followed)")
    dlist.add_argument("path", nargs="?", default="/workspace")
    dlist.add_argument("-r", "--recursive", action="store_true")
    dlist.add_argument("--limit", type=int, default=None, metavar="N", help="one page of at most N entries")
    dlist.add_argument("--cursor", default=None, help="continue a listing where its page ended")
    dread = _leaf(sub, "read", f"{h}:disk_read", "print a file on the disk (or a window of it)")
    dread.add_argument("path")
    dread.add_argument("--offset", type=int, default=0)
    dread.add_argument("--max-bytes", type=int, default=None, help="default 1 MiB, limit 8 MiB per call")
    dread.add_argument("--output", "-o", help="write to this host file instead of stdout")
    dexport = _leaf(sub, "export", f"{h}:disk_export", "copy a path on the disk out to a new host path")
    dexport.add_argument("path", metavar="PATH")
    dexport.add_argument("--output", "-o", required=True, metavar="OUT", help="host path; must not exist")
    dexport.add_argument("--format", choices=["dir", "tar"], default="dir", help="dir: the files (default); tar")
    dusage = _leaf(sub, "usage", f"{h}:disk_usage", "what fills the disk: the largest directories, like du")
    dusage.add_argument("path", nargs="?", default="/workspace")
    dusage.add_argument("--top", type=int, default=None, metavar="N", help="how many directories (default 10)")
    dcheck = _leaf(sub, "check", f"{h}:disk_check", "check the disk's filesystem (microVM disks; nothing written)")
    dcheck.add_argument("--repair", action="store_true", help="repair a copy and put it in place if that succeeds")
    dgrow = _leaf(sub, "grow", f"{h}:disk_grow", "enlarge the disk and its filesystem (microVM disks)")
    dgrow.add_argument("--size", required=True, help="the new size, e.g. 4G or 512M (never smaller)")


def build_parser() -> argparse.ArgumentParser:
    root: argparse.ArgumentParser = _Parser(
        prog="roost",
        description="Persistent, isolated Linux workspaces for coding agents.",
        epilog="Every command takes --json, before or after its name. Workspaces are named by id, unique id prefix, or name.",
    )
    root.add_argument("--version", action="store_true", help="print the version and exit")
    root.add_argument("--home", help="state directory (default $ROOST_HOME or ~/.local/share/roost)")
    top = root.add_subparsers(dest="command", metavar="COMMAND")

    _leaf(top, "doctor", f"{_H}.host:doctor", "check what this host can run, and why", workspace=False)

    runtime = top.add_parser("runtime", help="the VMM runtime (Firecracker)")
    rsub = runtime.add_subparsers(dest="runtime_command", metavar="ACTION")
    install = _leaf(
        rsub,
        "install",
        f"{_H}.runtime:runtime_install",
        "download and verify Firecracker into <home>/runtime",
        workspace=False,
    )
    install.add_argument("--version", dest="runtime_version", metavar="V", help="Firecracker release, e.g. 1.12.1")

    env = top.add_parser("env", help="environments (images)").add_subparsers(dest="env_command", metavar="ACTION")
    _leaf(env, "list", f"{_H}.envs:env_list", "list environments and what is cached", workspace=False)
    inspect = _leaf(
        env, "inspect", f"{_H}.envs:env_inspect", "show one environment and its cached image", workspace=False
    )
    inspect.add_argument("env_name", metavar="ENV")
    build = _leaf(
        env, "build", f"{_H}.envs:env_build", "build an environment from apt's Debian mirror", workspace=False
    )
    build.add_argument("env_name", metavar="ENV")
    build.add_argument("--if-missing", action="store_true", help="do nothing when the env is already cached")
    pull = _leaf(env, "pull", f"{_H}.envs:env_pull", "pull an environment from a registry", workspace=False)
    pull.add_argument("env_name", metavar="ENV")
    pull.add_argument("--registry", help="host[:port]/prefix (default $ROOST_REGISTRY)")
    pull.add_argument("--digest", metavar="SHA256", help="pull this exact manifest (sha256:...) instead of the tag")
    push = _leaf(env, "push", f"{_H}.envs:env_push", "publish a cached environment to a registry", workspace=False)
    push.add_argument("env_name", metavar="ENV")
    push.add_argument("reference", metavar="REF", help="host[:port]/repo:tag")
    _leaf(env, "prune", f"{_H}.envs:env_prune", "remove cached images nothing uses", workspace=False)
    _custom_env_commands(env)

    run = _leaf(top, "run", f"{_H}.run:run", "create a workspace, run one command, delete it", workspace=False)
    run.add_argument("env_name", metavar="ENV", help="environment, e.g. debian:12")
    _create_options(run)
    run.add_argument("--seed-path", help="host directory or tar copied into /workspace first")
    _network_options(run, "--network", "off")
    _exec_options(run)

    ws = top.add_parser("workspace", aliases=["ws"], help="persistent workspaces")
    wsub = ws.add_subparsers(dest="ws_command", metavar="ACTION")

    create = _leaf(wsub, "create", f"{_H}.workspaces:create", "create a workspace", workspace=False)
    create.add_argument("env_name", metavar="ENV", help="environment, e.g. debian:12")
    create.add_argument("--name", help="a unique name to refer to it by")
    create.add_argument("--label", action="append", default=[], metavar="K=V", help="label (repeatable)")
    create.add_argument("--seed-path", help="host directory or tar copied into /workspace")
    create.add_argument("--ttl", type=int, metavar="S", help="delete automatically after S seconds")
    _network_options(create, "--network-policy", "off")
    create.add_argument(
        "--secret", action="append", default=[], metavar="NAME[:MODE]", help="attach a secret of the store (repeatable)"
    )
    create.add_argument("--id-only", action="store_true", help="print only the new id")
    _create_options(create)

    wlist = _leaf(wsub, "list", f"{_H}.workspaces:list_workspaces", "list workspaces", workspace=False)
    wlist.add_argument("--label", action="append", default=[], metavar="K=V", help="only with this label (repeatable)")
    wlist.add_argument("--state", metavar="S", help="only in this state, e.g. running, stopped, unhealthy")
    wlist.add_argument("--backend", metavar="B", help="only on this backend: firecracker, sandbox or mock")
    _leaf(wsub, "status", f"{_H}.workspaces:status", "show one workspace and its health")
    _leaf(wsub, "stats", f"{_H}.workspace_stats:stats", "what a running workspace uses now: CPU, memory, pids, disk")
    fork = _leaf(wsub, "fork", f"{_H}.fork:fork", "new workspaces holding this one's /workspace (or a snapshot)")
    fork.add_argument("--count", type=int, default=1, metavar="N", help="how many (1-100, default 1)")
    fork.add_argument("--snapshot", metavar="NAME", help="fork this snapshot (default: /workspace as it is now)")
    fork.add_argument("--name-prefix", metavar="P", help="name the new workspaces P-1 .. P-N")
    fork.add_argument("--label", action="append", default=[], metavar="K=V", help="label them (repeatable)")
    fork.add_argument(
        "--secret", action="append", default=[], metavar="NAME[:MODE]", help="attach a secret to each (repeatable)"
    )
    update = _leaf(wsub, "update", f"{_H}.workspaces:update", "rename, relabel or change the TTL")
    update.add_argument("--name")
    update.add_argument("--label", action="append", default=[], metavar="K=V")
    update.add_argument("--unlabel", action="append", default=[], metavar="K", help="remove a label")
    ttl = update.add_mutually_exclusive_group()
    ttl.add_argument("--ttl", type=int, metavar="S")
    ttl.add_argument("--no-ttl", action="store_true", help="never expire")
    logs = _leaf(wsub, "logs", f"{_H}.exec_logs:logs", "exec history, or one exec's saved output")
    logs.add_argument("--limit", type=int, help="only the newest N execs")
    logs.add_argument("--exec", dest="exec_id", type=int, metavar="N", help="print the output of exec N")
    logs.add_argument("--stream", choices=["stdout", "stderr"], default="stdout")
    logs.add_argument("--offset", type=int, default=0)
    logs.add_argument("--max-bytes", type=int, default=1024 * 1024)
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing each exec as it finishes (Ctrl-C stops)"
    )
    delete = _leaf(wsub, "delete", f"{_H}.workspaces:delete", "stop everything and remove the workspace")
    delete.add_argument("--force", action="store_true", help="also remove a corrupt or half-made workspace")

    _leaf(wsub, "stop", f"{_H}.workspaces:stop", "shut a workspace down, keeping /workspace (start boots it again)")
    _leaf(wsub, "start", f"{_H}.workspaces:start", "boot a stopped workspace again")
    _leaf(
        wsub,
        "restart",
        f"{_H}.workspaces:restart",
        "stop whatever is left of a workspace, then start it (the way out of unhealthy; /workspace is kept)",
    )
    exec_ = _leaf(wsub, "exec", f"{_H}.run:workspace_exec", "run a command to completion in a workspace")
    exec_.add_argument(
        "-i", "--interactive", action="store_true", help="forward stdin (as typed with -t, else all of it at the start)"
    )
    exec_.add_argument("-t", "--tty", action="store_true", help="run the command on a terminal (PTY); -it for humans")
    _secret_uses(exec_)
    _exec_options(exec_)

    sync = wsub.add_parser("sync", help="copy host files in").add_subparsers(dest="sync_command", metavar="ACTION")
    push = _leaf(sync, "push", f"{_H}.files:sync_push", "copy a host directory or tar into the workspace")
    push.add_argument("source", metavar="SRC")
    push.add_argument("--dest", default="/workspace", help="destination directory (default /workspace)")
    push.add_argument("--delete", action="store_true", help="remove files in DEST that SRC does not have")

    copy = _leaf(
        wsub, "cp", f"{_H}.copy:cp", "copy a file or directory between the host and a workspace", workspace=False
    )
    copy.add_argument("source", metavar="SRC", help="host path, or WS:PATH")
    copy.add_argument("dest", metavar="DEST", help="WS:PATH, or a host path (an existing directory receives SRC)")

    files = wsub.add_parser("file", help="files in /workspace").add_subparsers(dest="file_command", metavar="ACTION")
    flist = _leaf(files, "list", f"{_H}.files:file_list", "list a directory")
    flist.add_argument("path", nargs="?", default="/workspace")
    flist.add_argument("-r", "--recursive", action="store_true")
    fstat = _leaf(files, "stat", f"{_H}.files:file_stat", "show one path")
    fstat.add_argument("path")
    fread = _leaf(files, "read", f"{_H}.files:file_read", "print a file (or a window of it)")
    fread.add_argument("path")
    fread.add_argument("--offset", type=int, default=0)
    fread.add_argument("--max-bytes", type=int, default=None, help="default 1 MiB, limit 8 MiB per call")
    fread.add_argument("--output", "-o", help="write to this host file instead of stdout")
    fwrite = _leaf(files, "write", f"{_H}.files:file_write", "write a file atomically")
    fwrite.add_argument("path")
    source = fwrite.add_mutually_exclusive_group(required=True)
    source.add_argument("--content", help="the text to write")
    source.add_argument("--from-file", help="host file to copy")
    source.add_argument("--stdin", action="store_true", help="read the content from stdin")
    fwrite.add_argument("--mode", help="permissions in octal, e.g. 0755")
    fdelete = _leaf(files, "delete", f"{_H}.files:file_delete", "delete a file or directory")
    fdelete.add_argument("path")
    fdelete.add_argument("-r", "--recursive", action="store_true")

    patch = wsub.add_parser("patch", help="apply diffs").add_subparsers(dest="patch_command", metavar="ACTION")
    papply = _leaf(patch, "apply", f"{_H}.files:patch_apply", "apply a unified diff (all hunks or none)")
    given = papply.add_mutually_exclusive_group(required=True)
    given.add_argument("--patch", help="the patch text")
    given.add_argument("--patch-file", help="host file holding the patch ('-' for stdin)")
    papply.add_argument("--dry-run", action="store_true", help="check that it applies, change nothing")

    _shell_commands(wsub)
    _service_commands(wsub)
    _network_commands(wsub)
    _secret_commands(top, wsub)
    _change_commands(wsub)
    _disk_commands(wsub)

    mcp = top.add_parser("mcp", help="the MCP server for LLM clients").add_subparsers(
        dest="mcp_command", metavar="ACTION"
    )
    serve = _leaf(mcp, "serve", f"{_H}.host:mcp_serve", "serve roost's tools over MCP", workspace=False)
    add_serve_arguments(serve)
    _mcp_config_command(mcp)
    _ui_command(top)
    return root


def _ui_command(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = _leaf(top, "ui", f"{_H}.ui:ui", "serve the dashboard on 127.0.0.1 (token-protected)", workspace=False)
    ui.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    ui.add_argument("--no-open", action="store_true", help="print the URL only; do not open a browser")
    ui.add_argument("--backend", help="backend for workspaces created from the dashboard")


def _mcp_config_command(mcp: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = _leaf(
        mcp,
        "config",
        f"{_H}.mcp_config:mcp_config",
        "print (or install) an MCP client's config for roost",
        workspace=False,
    )
    config.add_argument("client", choices=MCP_CLIENTS, metavar="CLIENT", help=" | ".join(MCP_CLIENTS))
    config.add_argument("--profile", choices=PROFILE_NAMES, default="full", help="tool set (default: full)")
    config.add_argument("--allow-root", dest="allow_roots", action="append", metavar="DIR", help="as for mcp serve")
    config.add_argument(
        "--allow-secret", dest="allow_secrets", action="append", metavar="NAME", help="as for mcp serve"
    )
    config.add_argument("--backend", help="as for mcp serve (default: the best this host can run)")
    config.add_argument("--install", action="store_true", help="merge it into the client's project file, diff first")
    config.add_argument("--dir", default=".", help="the project whose file --install writes (default: here)")
    config.add_argument("--yes", action="store_true", help="with --install: write without asking")
