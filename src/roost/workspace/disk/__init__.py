"""`workspace disk`: a stopped workspace's files read (and its disk image checked or grown) without booting it.

Imports: nothing itself; see its modules.
"""
