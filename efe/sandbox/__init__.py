"""Sandboxed execution of untrusted feature programs (see ``client.Sandbox``)."""

from efe.sandbox.client import (
    Sandbox,
    SandboxError,
    SandboxFailure,
    SandboxResult,
    check_source,
)
from efe.sandbox.plan import Step

__all__ = ["Sandbox", "SandboxError", "SandboxFailure", "SandboxResult", "Step", "check_source"]
