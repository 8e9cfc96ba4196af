"""The accelerator's internal buffers of one DVFS domain, kept together in one module.

Amaranth writes a memory into the Verilog module of the component that adds it; the core holds
buffers of three domains, so each domain's buffers live in a block of their own, which the power
intent (``cosim/upf.py``) places in that domain's power domain.
"""

from collections.abc import Mapping

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from voltflow.scheduler.chip import Domain

__all__ = ["DomainBuffers"]


class DomainBuffers(wiring.Component):
    """Holds the memories of one DVFS domain (no ports of its own).

    The memories' read and write ports are made and driven by the component that owns the
    buffers (the accelerator): the port signals cross into this block's Verilog module as its
    ports, so the storage sits here and the logic around it where it was.

    Parameters
    ----------
    domain : Domain
        The DVFS domain whose supply powers the memories.
    memories : mapping of str to Memory
        The memories, by instance name (the Verilog names of their arrays).
    """

    def __init__(self, *, domain: Domain, memories: Mapping[str, Memory]) -> None:
        if not isinstance(domain, Domain):
            raise TypeError(f"domain must be a Domain, not {domain!r}")
        if not memories or not all(isinstance(mem, Memory) for mem in memories.values()):
            raise TypeError(f"memories must map names to Memory objects, not {memories!r}")
        self.domain = domain
        self.memories = dict(memories)
        super().__init__(wiring.Signature({}))

    @staticmethod
    def instance_name(domain: Domain) -> str:
        """The instance name of a domain's buffers in the accelerator (``feeder_buffers``)."""
        return f"{domain.value}_buffers"

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for name, memory in self.memories.items():
            m.submodules[name] = memory
        return m
