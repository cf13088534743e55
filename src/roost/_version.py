"""roost's version, in a module of its own so that any layer may say it without importing the SDK.

This module imports nothing.
"""

__version__ = "3.0.0"
