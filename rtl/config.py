"""Build-time parameters of the accelerator RTL, derived from a chip (one Verilator build each).

Everything here is either a number of the chip file or a size that follows from one; the RTL
components take an :class:`AccelConfig` and nothing else, so two chips with equal configs share
a build.
"""

from dataclasses import dataclass

from voltflow.hw.widths import ADDR_BITS, COUNTER_BITS
from voltflow.scheduler.chip import Chip, Sparsity
from voltflow.scheduler.dataflow import bias_words, requant_words

# ADDR_BITS and COUNTER_BITS are defined in voltflow.hw.widths (shared with the PMU); exported
# here too for the readers of the accelerator's parameters.
__all__ = ["ADDR_BITS", "COUNTER_BITS", "AccelConfig"]


@dataclass(frozen=True, slots=True)
class AccelConfig:
    """The parameters that decide the generated Verilog.

    Attributes
    ----------
    rows, cols : int
        Systolic array size (R pixel rows x C output-channel columns).
    lanes : int
        int8 lanes per 64-bit word (= cols).
    phase_bits : int
        Width B of the fractional dividers' accumulators.
    half_words : int
        Words in one half of the double-buffered weight tile buffer.
    bias_words : int
        Words of int32 biases after a pass's K_pad weight words.
    requant_words : int
        Words of per-channel requantisation entries after a per-channel pass's bias words.
    step_sync, epoch_sync, op_setup : int
        Barrier and descriptor-fetch costs in reference cycles (chip ``timing``).
    attention : bool
        The attention engines (B loader, softmax unit) have their logic. The chip has them; a
        simulation build for a network without attention ops leaves them empty (their outputs
        0), so that Verilator does not evaluate logic no op of the network uses
        (docs/attention.md, "What it costs the other networks").
    sparsity : Sparsity
        What the array does with a zero operand (chip ``array.sparsity``, docs/sparsity.md):
        GATE adds the zero flags that travel with the operands and the gating counters; NONE
        leaves the array as it is.
    """

    rows: int
    cols: int
    lanes: int
    phase_bits: int
    half_words: int
    bias_words: int
    requant_words: int
    step_sync: int
    epoch_sync: int
    op_setup: int
    attention: bool = True
    sparsity: Sparsity = Sparsity.NONE

    def __post_init__(self) -> None:
        if self.rows != self.cols or self.lanes != self.cols:
            raise ValueError(
                f"The RTL needs rows == cols == lanes per word, not {self.rows}x{self.cols} "
                f"with {self.lanes} lanes (depthwise uses the diagonal; a word feeds a row)"
            )
        for name in ("step_sync", "epoch_sync", "op_setup"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be at least 1 reference cycle, not {getattr(self, name)}"
                )
        if self.bias_words + self.requant_words > self.cols + 1:
            raise ValueError(
                f"a pass's {self.bias_words} bias and {self.requant_words} requantisation words "
                f"must be read within a stream's cols + 1 = {self.cols + 1} ticks (one per tick)"
            )
        if self.sparsity is not Sparsity.NONE and self.rows * self.cols > 255:
            raise ValueError(
                f"array.sparsity {self.sparsity.value} counts up to rows x cols = "
                f"{self.rows * self.cols} gated MACs per tick in an 8-bit increment; at most 255"
            )
        if self.op_setup < 3:
            raise ValueError(
                f"op_setup must be at least 3 reference cycles (fetch, decode, launch), "
                f"not {self.op_setup}"
            )

    @classmethod
    def from_chip(cls, chip: Chip, *, attention: bool = True) -> "AccelConfig":
        return cls(
            attention=attention,
            sparsity=chip.sparsity,
            rows=chip.rows,
            cols=chip.cols,
            lanes=chip.lanes_per_word,
            phase_bits=chip.divider_phase_bits,
            half_words=chip.weight_buffer_half_words,
            bias_words=bias_words(chip),
            requant_words=requant_words(chip),
            step_sync=chip.timing.step_sync_ref_cycles,
            epoch_sync=chip.timing.epoch_sync_ref_cycles,
            op_setup=chip.timing.op_setup_ref_cycles,
        )

    @property
    def max_row_words(self) -> int:
        """Largest K_pad / lanes a pass can have: its K_pad + bias words fit half the buffer."""
        return (self.half_words - self.bias_words) // self.lanes

    @property
    def max_resident(self) -> int:
        """Most passes one epoch can hold (the smallest pass is lanes + bias_words words)."""
        return self.half_words // (self.lanes + self.bias_words)

    @property
    def obuf_slot_words(self) -> int:
        """Output-buffer words of one tile slot: every resident pass's R words."""
        return self.max_resident * self.rows
