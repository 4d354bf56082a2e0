"""The course-model commands, registered onto the main Typer app by ``cli.py``:
``faceid zoo list`` (the model zoo's sizes and uses) and ``faceid style`` (neural style
transfer on the dlib encoder's features). Thin, like every command; torch is imported inside
the commands, so ``faceid --help`` does not load it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceid.errors import UsageError
from faceid.terminal import SafeConsole

out = SafeConsole()
err = SafeConsole(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

zoo_app = typer.Typer(help="The model zoo: every architecture faceid builds.",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``zoo list`` and ``style`` to ``app``."""
    app.add_typer(zoo_app, name="zoo")
    app.command("style")(style_cmd)


def _millions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.2f} M"


@zoo_app.command("list")
def zoo_list(
    size: Annotated[Optional[int], typer.Option(min=32, max=1024, help="Count multiply-adds at SIZE x SIZE instead of each network's standard input (networks that cannot take it show '-').")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List each architecture: parameters, multiply-adds for one image at its standard
    input size (counted by hooks on every conv and linear layer, on the meta device: no
    weights are allocated) and where faceid uses it.

    Example: faceid zoo list --size 80 --json
    """
    from rich.table import Table

    from faceid.nn.zoo import zoo_table

    rows = [r.to_dict() for r in zoo_table(size)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table("architecture", "parameters", "multiply-adds", "input", "used in",
              title="faceid model zoo")
    for r in rows:
        t.add_row(r["name"], f"{r['parameters']:,}", _millions(r["macs"]), r["input"],
                  r["used_in"])
    out.print(t)


def _image_format(path: Path) -> str:
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unknown image type {path.suffix!r} (use .png or .jpg)")
    return fmt


def _save(image, path: Path, fmt: str) -> None:  # noqa: ANN001
    from PIL import Image

    from faceid.atomic import replacing

    with replacing(path, "wb") as fh:
        Image.fromarray(image).save(fh, format=fmt)


def style_cmd(
    content: Annotated[Path, typer.Argument(help="The content image (its layout is kept).")],
    style: Annotated[Path, typer.Argument(help="The style image (its textures and colours are copied).")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Where to write the result (.png or .jpg).")],
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Optimisation steps (Adam on the pixels).")] = 200,
    alpha: Annotated[float, typer.Option(min=0.0, max=1e9, help="Weight of the content cost.")] = 10.0,
    beta: Annotated[float, typer.Option(min=0.0, max=1e12, help="Weight of the style cost (0: content only).")] = 1000.0,
    layers: Annotated[str, typer.Option(help="Style layers with optional weights, e.g. conv1:0.4,stage1,stage2 (layers: conv1, stage1..stage5; unweighted ones share what is left of 1).")] = "conv1,stage1,stage2,stage3",
    content_layer: Annotated[str, typer.Option(help="The content cost's layer.")] = "stage2",
    size: Annotated[int, typer.Option(min=32, max=2048, help="Longer side of the images, px (both are scaled to it).")] = 256,
    lr: Annotated[float, typer.Option(min=1e-4, max=255.0, help="Adam's step, in pixel levels.")] = 2.0,
    noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of uniform noise in the starting image (the rest is the content image).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the starting noise.")] = 0,
    snapshot_every: Annotated[int, typer.Option(min=0, help="Every N steps write OUT's name + '-stepN' beside it and print the costs (0: never).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Neural style transfer: paint CONTENT in the style of STYLE by minimising
    alpha * J_content + beta * J_style over the generated image's pixels, on the features
    of the bundled dlib ResNet face encoder (content: one layer's activations; style: Gram
    matrices of several layers).

    Example: faceid style face.jpg texture.jpg -o styled.png --steps 300 --snapshot-every 100
    """
    from faceid.imageio import load_image
    from faceid.style import StyleConfig, fit, parse_layers, transfer
    from faceid.terminal import progress

    fmt = _image_format(output)
    style_layers = parse_layers(layers)
    cfg = StyleConfig(steps=steps, alpha=alpha, beta=beta, content_layer=content_layer,
                      style_layers=style_layers, lr=lr, noise=noise, seed=seed)
    content_img = fit(load_image(content), size)
    style_img = fit(load_image(style), size)
    snapshots: list[str] = []

    with progress(steps, "style transfer", unit="step") as bar:
        def on_step(record, image) -> None:  # noqa: ANN001
            bar.update(1)
            if snapshot_every and record.step % snapshot_every == 0:
                path = output.with_name(f"{output.stem}-step{record.step}{output.suffix}")
                _save(image(), path, fmt)
                snapshots.append(str(path))
                print(f"step {record.step}/{steps}: content {record.content:.4g}, style "
                      f"{record.style:.4g}, total {record.total:.4g}, "
                      f"{record.seconds / record.step:.3f} s/step -> {path}",
                      file=sys.stderr, flush=True)

        result = transfer(content_img, style_img, cfg, on_step=on_step)
    _save(result.image, output, fmt)
    first, last = result.history[0], result.history[-1]
    data = {"output": str(output), "size": list(result.image.shape[:2]), "steps": steps,
            "alpha": alpha, "beta": beta, "content_layer": content_layer,
            "style_layers": dict(style_layers),
            "seconds_per_step": result.seconds_per_step, "seconds": last.seconds,
            "first": {"content": first.content, "style": first.style, "total": first.total},
            "last": {"content": last.content, "style": last.style, "total": last.total},
            "snapshots": snapshots}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.table import Table

    t = Table("cost", "step 1", f"step {steps}", title=f"style transfer -> {output}")
    for key in ("content", "style", "total"):
        t.add_row(key, f"{data['first'][key]:.4g}", f"{data['last'][key]:.4g}")
    out.print(t)
    out.print(f"{result.image.shape[1]}x{result.image.shape[0]} px, {steps} steps, "
              f"{result.seconds_per_step:.3f} s/step")
