"""Exceptions with one clear, user-facing message.

Every error raised for bad user input derives from :class:`GlassJaxError`.  The CLI
catches these and prints the message alone (no traceback), exiting with status 2.
"""

from __future__ import annotations

from typing import Optional


class GlassJaxError(Exception):
    """Base class for errors caused by user input or configuration."""


class DataError(GlassJaxError):
    """A data file is unreadable, inconsistent or carries invalid labels.

    The message names the file, the frame (when known) and what to do about it.
    """

    def __init__(self, path, problem: str, frame: Optional[int] = None, hint: str = ""):
        self.path = str(path)
        self.frame = frame
        self.problem = problem
        self.hint = hint
        where = self.path if frame is None else f"{self.path}, frame {frame}"
        msg = f"{where}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ConfigError(GlassJaxError):
    """A configuration value (TOML key, CLI option, model hyper-parameter) is invalid."""


class ModelError(GlassJaxError):
    """A model file cannot be loaded or does not fit the data it is applied to."""


class SimulationError(GlassJaxError):
    """A simulation blew up or cannot continue (the message says where and why)."""
