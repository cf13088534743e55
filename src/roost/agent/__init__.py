"""The roost guest agent: one long-lived process inside every workspace.

It runs every workspace operation (exec, files, archives, patches, shells,
services, snapshots) for every backend. Standard library and
`roost.protocol` only, so the directories `roost/agent` and
`roost/protocol` (with `roost/__init__.py`) can be copied into an image and
run by the image's own python3. No host module imports this package except
to locate its files or spawn it.

Layers, each importing only those below it (tests/unit/test_import_graph.py):

    __main__                    the entry point: arguments, identity, signals
    server/                     listening, connections, handshake
    ops                         the op table: op name -> the handler module that registers it
    control execs/ files/       the operations, one package (or module: control, the
      shells/ services/           agent's own ping and shutdown) each; they never
      snapshots/                  import one another
    context record_page         the request core: what a handler sees of its call,
      state                       paged results, what every handler is given (`AgentState`)
    secret_files                one process's secrets (env values, tmpfs files made
                                  through directory fds of the file-system layer)
    fs/ system/                 the file-system layer and the seam to the OS (processes,
                                  clock); they never import each other
"""
