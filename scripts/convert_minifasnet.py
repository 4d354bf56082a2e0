"""Convert the published MiniFASNet weights into faceid package data.

Reads the two reference ``.pth`` files (Silent-Face-Anti-Spoofing, ``module.``-prefixed
reference names), checks their SHA-256 against the values recorded here, renames them onto
``faceid/nn/minifasnet.py``'s modules (:func:`faceid.nn.minifasnet.load_reference_weights`)
and writes, under ``faceid/models/minifasnet/``: one plain state dict per network (``.pt``),
the Apache-2.0 ``LICENSE``, a ``NOTICE`` and ``minifasnet.json`` (the runtime's model file,
with both the converted and the source checksums). Running it again reproduces the same
bytes, so the checksums in the JSON can be re-derived by anyone with the source files.

Usage: python scripts/convert_minifasnet.py [SOURCE_DIR]   (default ../shared/models/minifasnet)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

from faceid.antispoof import MODEL_FORMAT
from faceid.nn.minifasnet import build_minifasnet, load_reference_weights

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "models" / "minifasnet"
OUT = ROOT / "faceid" / "models" / "minifasnet"
REPOSITORY = "minivision-ai/Silent-Face-Anti-Spoofing"
COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
FOLDER = "resources/anti_spoof_models/"
LICENSE = "Apache-2.0"

# name, architecture, source file, its SHA-256 (PROVENANCE.md), crop scale, converted file
NETWORKS = (
    ("MiniFASNetV2", "minifasnet_v2", "2.7_80x80_MiniFASNetV2.pth",
     "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7,
     "minifasnet_v2.pt"),
    ("MiniFASNetV1SE", "minifasnet_v1se", "4_0_0_80x80_MiniFASNetV1SE.pth",
     "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990", 4.0,
     "minifasnet_v1se.pt"),
)

NOTICE = f"""MiniFASNet passive anti-spoofing weights (MiniFASNetV2, MiniFASNetV1SE)

Origin: {REPOSITORY}, commit {COMMIT},
folder {FOLDER} (2.7_80x80_MiniFASNetV2.pth, 4_0_0_80x80_MiniFASNetV1SE.pth).
Published by Minivision (minivision-ai) under the Apache License, Version 2.0 (LICENSE here).

Modified: the state dicts were renamed onto faceid's own MiniFASNet modules
(faceid/nn/minifasnet.py) and saved as plain PyTorch state dicts by
scripts/convert_minifasnet.py. The values of the weights are unchanged.
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(source: Path, out: Path = OUT) -> dict:
    """Write the package data from ``source`` into ``out``; return the model file written."""
    out.mkdir(parents=True, exist_ok=True)
    networks = []
    for name, arch, src_name, src_sha, scale, dst_name in NETWORKS:
        src = source / src_name
        if sha256(src) != src_sha:
            sys.exit(f"{src}: SHA-256 differs from the published file's {src_sha[:12]}...")
        model = build_minifasnet(arch)
        dropped = load_reference_weights(model, torch.load(src, map_location="cpu",
                                                           weights_only=True))
        print(f"{src_name} -> {dst_name} (Fourier-branch keys dropped: {len(dropped)})")
        torch.save(model.state_dict(), out / dst_name)
        networks.append({
            "name": name, "architecture": arch, "weights": dst_name,
            "sha256": sha256(out / dst_name),
            "source": {"repository": REPOSITORY, "commit": COMMIT, "path": FOLDER + src_name,
                       "sha256": src_sha},
            "input_size": 80, "crop_scale": scale, "channel_order": "BGR",
            "pixel_range": [0, 255], "live_class": 1, "license": LICENSE,
        })
    doc = {
        "format": MODEL_FORMAT,
        "name": "minifasnet-v2-v1se",
        "description": "Passive anti-spoofing: P(live) is the mean of the networks' softmax "
                       "at live_class, each on its own crop (crop_scale x the face box).",
        "license": f"{LICENSE} (LICENSE, NOTICE)",
        "networks": networks,
    }
    (out / "minifasnet.json").write_text(json.dumps(doc, indent=2) + "\n")
    shutil.copyfile(source / "LICENSE", out / "LICENSE")
    (out / "NOTICE").write_text(NOTICE)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding the reference .pth files and LICENSE")
    args = parser.parse_args()
    torch.set_num_threads(1)
    convert(args.source)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
