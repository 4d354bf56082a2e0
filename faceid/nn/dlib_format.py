"""Reader for dlib's serialisation format, enough to read a ``dnn`` network file.

dlib writes (``dlib/serialize.h``, ``dlib/float_details.h``, ``dlib/dnn/*.h``):

* integers packed as one control byte (low nibble: byte count, bit 7: negative) followed by
  that many little-endian magnitude bytes;
* strings as a packed length plus the bytes; bools as the characters ``'0'``/``'1'``;
* scalars ``float``/``double`` portably as a packed int64 mantissa and int16 exponent;
* tensors (version 2) as packed ``num_samples, k, nr, nc`` then raw little-endian float32s;
* a network as the loss layer, the version numbers of all nested wrapper layers, the input
  layer, and then, innermost first, each computational layer's own record (a version string
  naming its kind, its fields, its parameter tensor) followed by the wrapper's bookkeeping.

Tags and skips carry no record of their own, so the topology is not in the file: a builder
(``faceid.nn.dlib_resnet``) supplies it, and this module only returns the flat record list.
Written from the format description, without dlib at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceid.errors import ModelError

_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
INPUT_KINDS = ("input_rgb_image_sized", "input_rgb_image")


@dataclass
class LayerRecord:
    """One layer as stored: ``kind`` is dlib's version string (``con_4``, ``affine_``...)."""

    kind: str
    fields: dict[str, object] = field(default_factory=dict)
    params: np.ndarray | None = None


class DlibReader:
    """Sequential reader over the bytes of a dlib-serialised object."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError(f"{self.name}: truncated dlib file (wanted {n} bytes at {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def int(self) -> int:
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if size > 8:
            raise ModelError(f"{self.name}: bad integer control byte {ctrl:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def str(self) -> str:
        return self._take(self.int()).decode("latin-1")

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise ModelError(f"{self.name}: bad bool byte {c!r} at {self.pos - 1}")
        return c == b"1"

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def shape(self) -> tuple[int, int, int, int]:
        return (self.int(), self.int(), self.int(), self.int())

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ModelError(f"{self.name}: tensor version {version} is not supported (want 2)")
        shape = self.shape()
        count = shape[0] * shape[1] * shape[2] * shape[3]
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise ModelError(f"{self.name}: alias_tensor version {version} is not supported")
        return self.shape()

    def peek_string_is(self, names: tuple[str, ...]) -> bool:
        """True when the next item is a packed string equal to one of ``names``."""
        start = self.pos
        try:
            n = self.int()
            return n < 64 and self.data[self.pos:self.pos + n].decode("latin-1") in names
        except ModelError:
            return False
        finally:
            self.pos = start


def _multipliers(r: DlibReader) -> dict[str, object]:
    names = ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult")
    return {n: r.float() for n in names}


def _read_layer(r: DlibReader, kind: str) -> LayerRecord:
    rec = LayerRecord(kind)
    if kind == "con_4":
        rec.params = r.tensor().reshape(-1)
        for key in ("num_filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x"):
            rec.fields[key] = r.int()
        rec.fields["filters"] = r.alias_shape()
        rec.fields["biases"] = r.alias_shape()
        rec.fields.update(_multipliers(r))
    elif kind == "affine_":
        rec.params = r.tensor().reshape(-1)
        rec.fields["gamma"] = r.alias_shape()
        rec.fields["beta"] = r.alias_shape()
        rec.fields["mode"] = r.int()
    elif kind in ("max_pool_2", "avg_pool_2"):
        for key in ("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x"):
            rec.fields[key] = r.int()
    elif kind == "fc_2":
        rec.fields["num_outputs"] = r.int()
        rec.fields["num_inputs"] = r.int()
        rec.params = r.tensor().reshape(-1)
        rec.fields["weights"] = r.alias_shape()
        rec.fields["biases"] = r.alias_shape()
        rec.fields["bias_mode"] = r.int()
        rec.fields.update(_multipliers(r))
    elif kind in ("relu_", "add_prev_"):
        pass
    else:
        raise ModelError(f"{r.name}: unsupported dlib layer {kind!r} at byte {r.pos}")
    return rec


def _skip_bookkeeping(r: DlibReader) -> None:
    """After each layer: 3 flags and 3 (normally empty) gradient/output tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()


@dataclass
class DlibNet:
    """A parsed network file: the loss record, the input record and the layers, input first."""

    loss: LayerRecord
    input: LayerRecord
    layers: list[LayerRecord]


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``dnn`` network file (``loss_metric`` networks with the layer kinds that
    dlib's face-recognition ResNet uses). Raises :class:`ModelError` on anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read dlib weights ({exc.strerror})") from exc
    r = DlibReader(data, str(path))
    r.int()  # add_loss_layer version
    loss_kind = r.str()
    if not loss_kind.startswith("loss_metric"):
        raise ModelError(f"{path}: expected a loss_metric network, found {loss_kind!r}")
    loss = LayerRecord(loss_kind, {"margin": r.float(), "distance_threshold": r.float()})
    while not r.peek_string_is(INPUT_KINDS):  # versions of the nested wrapper layers
        r.int()
        if r.pos > 4096:
            raise ModelError(f"{path}: no input layer found in the network header")
    inp = LayerRecord(r.str())
    inp.fields["avg_rgb"] = (r.float(), r.float(), r.float())
    if inp.kind == "input_rgb_image_sized":
        inp.fields["nr"], inp.fields["nc"] = r.int(), r.int()
    layers = []
    while not r.at_end():
        layers.append(_read_layer(r, r.str()))
        _skip_bookkeeping(r)
        if len(layers) == 1:
            r.int()  # the input-side wrapper (version 3) also stores _sample_expansion_factor
    return DlibNet(loss, inp, layers)
