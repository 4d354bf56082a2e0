"""Which engine runs each network faster: OpenCV's DNN module or ONNX Runtime, on the same
ONNX export, one thread each, side by side in one run (``faceid/netrun.py`` picks each
network's engine from this).

    .venv/bin/python -m bench.runtimes [--seconds 2] [--json out.json]

Every network a decision needs is loaded the normal way first (which makes its export in
the user's cache if there is none), then its export is read back and run by both engines
at the input shapes the door and the server give it: MTCNN's P-Net on a 640x480 frame's
first pyramid levels, R-Net on a batch of 16 candidates, O-Net on one face, each liveness
net on one crop, and the encoder on one face's two views. The two engines' outputs are
compared too (largest absolute difference).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACEID_THREADS", "1")

SHAPES = {"mtcnn-pnet": [(1, 3, 180, 240), (1, 3, 90, 120)], "mtcnn-rnet": [(16, 3, 24, 24)],
          "mtcnn-onet": [(1, 3, 48, 48)], "liveness-MiniFASNetV2": [(1, 3, 80, 80)],
          "liveness-MiniFASNetV1SE": [(1, 3, 80, 80)],
          "encoder-dlib-resnet-v1": [(2, 3, 150, 150)]}


def per_call_ms(net: object, x: np.ndarray, seconds: float) -> float:
    net(x)  # type: ignore[operator]
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        net(x)  # type: ignore[operator]
        calls += 1
    return 1000 * (time.perf_counter() - start) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="timing per network and engine")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import cv2
    import onnxruntime

    from faceid import netrun
    from faceid.antispoof import MODEL_DIR, load_networks
    from faceid.detection import load_mtcnn
    from faceid.encoder import Encoder
    from faceid.modelfile import load_model_info

    load_mtcnn(), load_networks(MODEL_DIR), Encoder(load_model_info())  # the exports
    rng = np.random.default_rng(0)
    rows = []
    for name, shapes in SHAPES.items():
        newest = max(netrun.cache_dir().glob(f"{name}-*.{netrun.CACHE_SUFFIX}"),
                     key=lambda p: p.stat().st_mtime)
        onnx = netrun.read_cached(newest)
        engines = {"opencv": netrun.OpenCVNet(onnx, 1), "onnxruntime": netrun.OrtNet(onnx, 1)}
        for shape in shapes:
            x = rng.uniform(0, 255, shape).astype(np.float32)
            outs = {k: net(x)[0] for k, net in engines.items()}
            ms = {k: round(per_call_ms(net, x, a.seconds), 3) for k, net in engines.items()}
            row = {"network": name, "input": list(shape), **{f"{k}_ms": v for k, v in ms.items()},
                   "faster": min(ms, key=ms.get),
                   "ratio": round(ms["opencv"] / ms["onnxruntime"], 2),
                   "max_difference": float(np.abs(outs["opencv"] - outs["onnxruntime"]).max())}
            rows.append(row)
            print(f"{name:26} {str(shape):18} OpenCV {ms['opencv']:7.3f} ms  ONNX Runtime "
                  f"{ms['onnxruntime']:7.3f} ms  ({row['faster']} faster, "
                  f"diff {row['max_difference']:.1e})", flush=True)
    out = {"opencv": cv2.__version__, "onnxruntime": onnxruntime.__version__,
           "threads": os.environ["FACEID_THREADS"], "load_average": os.getloadavg()[0],
           "rows": rows}
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
