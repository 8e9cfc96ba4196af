"""Networks with real parameters: an ONNX model, or the network file ``voltflow import`` wrote.

`load_model` is what the end-to-end flow calls: for a zoo name or a plain network file it returns
the network alone (the flow then draws seeded random weights); for an ``.onnx`` file, or a network
file whose ``parameters`` section names one, it also returns the model's int8 parameters
(`scheduler.quantise.Quantised`). `import_document` builds the network file of a model, scales
included, so that a later run quantises exactly as the import did.

A network file's ``parameters`` section (docs/network-format.md):

.. code-block:: yaml

    parameters:
      onnx: light_squeezenet.onnx    # relative to the network file
      sha256: 5f2a...                # of the ONNX file at import time
      input_shape: [3, 224, 224]     # the input shape the import used
      scheme: calibrated on a seeded standard-normal input (seed 0)
      scales: {data_0: 0.0307, conv1: 0.0152, ...}   # every tensor's int8 scale
"""

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .documents import DocumentError, parse_yaml, read_text, short
from .network import Network, NetworkError, load_network, network_from_document
from .onnx_graph import OnnxError, read_onnx
from .onnx_import import Imported, import_onnx
from .quantise import QuantError, Quantised, calibrate, quantise, seeded_input

__all__ = [
    "Model",
    "import_document",
    "import_model",
    "load_model",
    "load_onnx_network",
    "read_calibration",
]

_PARAMETER_KEYS = ("onnx", "sha256", "input_shape", "scheme", "scales")


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """A network and, when it comes from a model, its int8 parameters.

    ``imported``/``quantised`` are None for zoo networks and plain network files (the flow draws
    seeded random weights); ``source`` says where the parameters come from, for reports.
    """

    network: Network
    imported: Imported | None = None
    quantised: Quantised | None = None

    @property
    def weights(self) -> str:
        """``"file"`` (the model's own weights) or ``"generated"`` (seeded random)."""
        return "generated" if self.quantised is None else "file"


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_model(
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    calibration: str | os.PathLike[str] | None = None,
    seed: int = 0,
    scales: Mapping[str, float] | None = None,
    scheme: str | None = None,
) -> Model:
    """Import and quantise an ONNX model.

    A float model is calibrated on the inputs of the ``.npy`` file ``calibration``
    (`read_calibration`, checked against the imported network's input) or, when None, on the
    seeded standard-normal input of ``seed``; ``scales`` (a network file's, with its ``scheme``)
    skip calibration.

    Raises
    ------
    OnnxError
        The file cannot be read or mapped.
    QuantError
        The model cannot be quantised as the accelerator needs.
    """
    imported = import_onnx(read_onnx(path, input_shape))
    inputs = None if calibration is None else read_calibration(calibration, imported.network)
    if scales is not None:
        return Model(
            imported.network,
            imported,
            quantise(imported, scales=scales, scheme=scheme or "the network file's scales"),
        )
    if imported.quantised:
        return Model(imported.network, imported, quantise(imported))
    if inputs is None:
        inputs = [seeded_input(imported.network, seed)]
        how = f"calibrated on a seeded standard-normal input (seed {seed})"
    else:
        how = f"calibrated on {len(inputs)} input(s) of {calibration}"
    ranges = calibrate(imported, inputs)
    return Model(imported.network, imported, quantise(imported, ranges, scheme=how))


def load_onnx_network(path: str | os.PathLike[str]) -> Network:
    """The network of an ONNX model (no quantisation); errors as `NetworkError`."""
    try:
        return import_onnx(read_onnx(path)).network
    except OnnxError as exc:
        raise NetworkError(str(exc)) from None


def read_calibration(path: str | os.PathLike[str], network: Network) -> list[np.ndarray]:
    """Float calibration inputs from a ``.npy`` file of shape (N, C, H, W) or (C, H, W).

    Raises
    ------
    QuantError
        A file that is missing, not ``.npy``, or of the wrong shape or dtype.
    """
    label = str(path)
    shape = network.input
    want = (shape.channels, shape.height, shape.width)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise QuantError(f"{label}: no such file") from None
    except (OSError, ValueError) as exc:
        raise QuantError(
            f"{label}: not a numpy .npy file ({short(str(exc))}); save it with numpy.save"
        ) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise QuantError(
            f"{label}: holds {getattr(array, 'dtype', type(array).__name__)} values; calibration "
            "inputs are float (numpy.float32)"
        )
    if array.shape == want:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != want or array.shape[0] < 1:
        raise QuantError(
            f"{label}: shape {list(array.shape)}; the network input is {list(want)}: give "
            f"[N, {', '.join(map(str, want))}] or {list(want)}"
        )
    if not np.all(np.isfinite(array)):
        raise QuantError(f"{label}: holds NaN or infinite values")
    return [np.asarray(x, dtype=np.float32) for x in array]


def import_document(model: Model, path: Path, out: Path) -> dict[str, Any]:
    """The network file of ``model`` (imported from ``path``), to be written at ``out``."""
    assert model.imported is not None and model.quantised is not None
    document = dict(model.imported.document)
    relative = os.path.relpath(path.resolve(), out.resolve().parent)
    document["parameters"] = {
        "onnx": Path(relative).as_posix(),
        "sha256": _file_hash(path),
        "input_shape": list(document["input"]["shape"]),
        "scheme": model.quantised.scheme,
        "scales": {name: float(value) for name, value in model.quantised.scales.items()},
    }
    return document


def _fail(label: str, field: str, problem: str) -> NetworkError:
    return NetworkError(f"{label}: {field}: {problem}")


def _parameters(label: str, section: object) -> tuple[str, str, list[int], str, dict[str, float]]:
    if not isinstance(section, dict):
        raise _fail(
            label, "parameters", f"must be a mapping with keys {', '.join(_PARAMETER_KEYS)}"
        )
    for key in section:
        if key not in _PARAMETER_KEYS:
            raise _fail(
                label,
                "parameters",
                f"unknown key {short(key)}; allowed keys: {', '.join(_PARAMETER_KEYS)}",
            )
    for key in _PARAMETER_KEYS:
        if key not in section:
            raise _fail(label, "parameters", f"missing key {short(key)}")
    onnx_path, digest, shape, scheme, scales = (section[key] for key in _PARAMETER_KEYS)
    if not isinstance(onnx_path, str) or not onnx_path.endswith(".onnx"):
        raise _fail(
            label, "parameters.onnx", f"must be the path of an .onnx file, not {short(onnx_path)}"
        )
    if not isinstance(digest, str) or len(digest) != 64:
        raise _fail(label, "parameters.sha256", f"must be 64 hex digits, not {short(digest)}")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise _fail(label, "parameters.input_shape", f"must be [C, H, W], not {short(shape)}")
    if not isinstance(scheme, str):
        raise _fail(label, "parameters.scheme", f"must be a string, not {short(scheme)}")
    if not isinstance(scales, dict):
        raise _fail(
            label, "parameters.scales", f"must map tensor names to scales, not {short(scales)}"
        )
    for name, value in scales.items():
        if (
            not isinstance(value, float | int)
            or isinstance(value, bool)
            or not np.isfinite(value)
            or value <= 0
        ):
            raise _fail(
                label, f"parameters.scales.{name}", f"must be a positive number, not {short(value)}"
            )
    return onnx_path, digest, shape, scheme, {str(k): float(v) for k, v in scales.items()}


def load_model(name_or_path: str | os.PathLike[str], *, seed: int = 0) -> Model:
    """The network named by ``--net`` and, for a model, its int8 parameters.

    Raises
    ------
    NetworkError
        For every problem, the file and field named (ONNX and quantisation errors included).
    """
    text = str(name_or_path)
    try:
        if text.endswith(".onnx"):
            return import_model(name_or_path, seed=seed)
        if not text.endswith((".yaml", ".yml")):
            return Model(load_network(name_or_path))
        doc = parse_yaml(read_text(name_or_path, text), text)  # read and parsed once
        network = network_from_document(doc, text)
        if "parameters" not in doc:
            return Model(network)
        onnx_path, digest, shape, scheme, scales = _parameters(text, doc["parameters"])
        model_path = Path(text).parent / onnx_path
        if not model_path.is_file():
            raise _fail(
                text,
                "parameters.onnx",
                f"{str(model_path)!r} does not exist; the "
                "network file needs the model it was imported from beside it",
            )
        if _file_hash(model_path) != digest:
            raise _fail(
                text,
                "parameters.sha256",
                f"{str(model_path)!r} changed since the import; import it again (voltflow import)",
            )
        model = import_model(model_path, input_shape=shape, scales=scales, scheme=scheme)
    except (OnnxError, QuantError, DocumentError) as exc:
        raise NetworkError(str(exc)) from None
    if model.network.ops != network.ops or model.network.input != network.input:
        raise _fail(
            text,
            "ops",
            f"differ from the ops of {onnx_path!r}; the file was edited "
            "after the import: import the model again",
        )
    return Model(network, model.imported, model.quantised)
