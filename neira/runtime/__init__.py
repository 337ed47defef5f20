"""The runtime: typed payloads, the implementation registry, backends, the worker pool and the pathway runner
(contract §6). docs/runtime.md tells how the parts fit and how to add an implementation."""

from neira.runtime.builtins import builtin_registry
from neira.runtime.chain import Risk, check_chain
from neira.runtime.registry import BadInput, Impl, Registry, impl
from neira.runtime.results import RunResult
from neira.runtime.service import RunService

__all__ = ["BadInput", "Impl", "Registry", "Risk", "RunResult", "RunService", "builtin_registry", "check_chain", "impl"]
