"""Ship OpenCV's YuNet face detector as faceid package data.

Copies the ONNX file (unchanged: OpenCV runs it as it is) after checking its SHA-256 against
the value recorded in its PROVENANCE.md, and writes beside it, under ``faceid/models/yunet/``:
the MIT ``LICENSE`` of the OpenCV model zoo's YuNet folder, a ``NOTICE`` and ``yunet.json``
(the runtime's model file: file name, checksum, source, input convention). Running it again
reproduces the same bytes.

Usage: python scripts/ship_yunet.py [SOURCE_DIR]   (default ../shared/models/yunet)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "models" / "yunet"
OUT = ROOT / "faceid" / "models" / "yunet"
SOURCE_FILE = "face_detection_yunet_2026may.onnx"
SOURCE_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
SHIPPED_FILE = "face_detection_yunet.onnx"
REPOSITORY = "RuDr8A/RealTime-PPE-Compliance"
COMMIT = "1eb40b10d4219cd4c21e41f7a66a064ad21d101f"

LICENSE = """MIT License

Copyright (c) 2020 Shiqi Yu <shiqi.yu@gmail.com>

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

NOTICE = f"""YuNet face detector (ONNX), file {SHIPPED_FILE}

Origin: YuNet (Shiqi Yu et al., "YuNet: A Tiny Millisecond-level Face Detector", 2023),
published in the OpenCV model zoo (opencv/opencv_zoo, models/face_detection_yunet) under the
MIT License (LICENSE here, the notice of that folder). This copy was taken from
{REPOSITORY}, commit {COMMIT}, path {SOURCE_FILE}, which carries the file
without a licence of its own; sha256 {SOURCE_SHA256}.

Not modified: only renamed. It runs through OpenCV's cv2.FaceDetectorYN.
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ship(source: Path, out: Path = OUT) -> dict:
    """Write the package data from ``source`` into ``out``; return the model file written."""
    data = (source / SOURCE_FILE).read_bytes()
    if sha256(data) != SOURCE_SHA256:
        sys.exit(f"{source / SOURCE_FILE}: SHA-256 differs from the recorded {SOURCE_SHA256[:12]}...")
    out.mkdir(parents=True, exist_ok=True)
    (out / SHIPPED_FILE).write_bytes(data)
    (out / "LICENSE").write_text(LICENSE)
    (out / "NOTICE").write_text(NOTICE)
    model = {
        "format": "faceid-yunet/1",
        "name": "yunet",
        "description": "Face detector: boxes, five landmarks (image-left eye first, as MTCNN) "
                       "and a score per face, run by cv2.FaceDetectorYN on a BGR uint8 image "
                       "of any size; finds faces of about 10 to 300 px.",
        "license": "MIT (LICENSE, NOTICE)",
        "weights": SHIPPED_FILE,
        "sha256": SOURCE_SHA256,
        "source": {"repository": REPOSITORY, "commit": COMMIT, "path": SOURCE_FILE,
                   "origin": "opencv/opencv_zoo models/face_detection_yunet",
                   "sha256": SOURCE_SHA256},
        "channel_order": "BGR",
        "face_px": [10, 300],
    }
    (out / "yunet.json").write_text(json.dumps(model, indent=2) + "\n")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    model = ship(ap.parse_args().source)
    print(f"wrote {OUT}: {model['weights']} (sha256 {model['sha256'][:12]}...), LICENSE, NOTICE")


if __name__ == "__main__":
    main()
