"""The agent's file-system layer: reaching files beneath a root without following links out.

What every operation builds on: `resolve` (component-by-component lookup
under a directory fd), `paths` (the workspace root and its guest names),
`dirfd` (changes named by directory fd and name), `dirtree` (walking an
open directory), `cursor` (the open parents along a run of sorted paths),
`staging` (private directories on the workspace's own mount),
`ignore_filter` (which paths a walk leaves out) and `atomic_json` (the
agent's own records, replaced whole).

Imports: protocol and the standard library only; nothing else of the agent.
"""
