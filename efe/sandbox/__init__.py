"""Sandboxed execution of untrusted feature programs (see ``client.Sandbox``)."""

from efe.sandbox.client import (
    Sandbox,
    SandboxError,
    SandboxFailure,
    SandboxResult,
    check_source,
)

__all__ = ["Sandbox", "SandboxError", "SandboxFailure", "SandboxResult", "check_source"]
