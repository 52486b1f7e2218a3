"""Sandboxed execution of untrusted feature programs (see ``client.Sandbox``)."""

from efe.sandbox.client import (
    Sandbox,
    SandboxError,
    SandboxFailure,
    SandboxLimits,
    SandboxResult,
    check_source,
)

__all__ = ["Sandbox", "SandboxError", "SandboxFailure", "SandboxLimits", "SandboxResult", "check_source"]
