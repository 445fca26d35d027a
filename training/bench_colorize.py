"""Benchmark of `colorcli colorize`: throughput against its floor and against a naive version.

    .venv/bin/python training/bench_colorize.py [--model M.onnx] [--count 100] [--naive-every 5]

Builds a folder of ``--count`` black-and-white photos from the scikit-image, scikit-learn and
matplotlib sample photos, resized from 0.3 to 12 megapixels (evenly spread) with a little grain
so their codecs work as hard as on real photos: grey JPEGs, colour JPEGs and grey PNGs. Then:

* pipeline: ``Colorizer.run`` over the folder, as ``colorcli colorize`` runs it (wall clock);
* floor: decode of every file, model inference at render size and at the model's context size
  if it has one (batched), encode of every result (same format and settings), each measured
  alone, single-threaded codecs;
* naive: per image, decode -> skimage rgb2lab at full size -> model at render size (batch 1)
  and at the context size, blended -> a,b upsampled (Pillow, bilinear) -> skimage lab2rgb at
  full size -> encode; on every
  ``--naive-every``-th file, compared with the pipeline on the same files;
* post-processing: upsample + Lab->sRGB at 1, 4 and 12 MP three ways: colorcli.render (numpy,
  LUT), the same maths as a second onnxruntime graph, and colorcli.color.lab_to_rgb.

Without ``--model`` a full-width unet-sn (registry defaults) with random weights is exported at
render size 256 (needs the [train] extra); weights do not change the speed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from colorcli import color, discovery, metadata, pipeline, render, runtime


def sample_photos() -> list[tuple[str, np.ndarray]]:
    import matplotlib.cbook
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [
        (name, getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")
    ]
    photos += [(name, getattr(data, name)()) for name in ("moon", "coins")]
    photos += list(zip(("china", "flower"), load_sample_images().images, strict=True))
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        photos.append(("grace_hopper", np.asarray(Image.open(fh).convert("RGB"))))
    return photos


def build_folder(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` photos from 0.3 to 12 MP, mostly grey JPEGs, then grey PNGs and colour JPEGs
    (76, 14 and 10 of 100: the grey sample photos stay grey whatever their slot)."""
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    paths = []
    for i, megapixels in enumerate(np.linspace(0.3, 12.0, count)):
        name, pixels = photos[i % len(photos)]
        h, w = pixels.shape[:2]
        scale = (megapixels * 1e6 / (h * w)) ** 0.5
        size = (round(w * scale), round(h * scale))
        im = Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC)
        kind = ("jpg-grey", "jpg-grey", "jpg-colour", "jpg-grey", "png-grey", "jpg-grey", "jpg-grey")[i % 7]
        if kind != "jpg-colour" or im.mode != "RGB":
            im = im.convert("L")
        grain = rng.normal(0, 4, (size[1], size[0], len(im.getbands()))).squeeze().astype(np.float32)
        im = Image.fromarray(np.clip(np.asarray(im) + grain, 0, 255).astype(np.uint8))
        path = folder / f"{i:03d}-{name}-{megapixels:.1f}MP.{kind[:3]}"
        im.save(path, **({"quality": 90} if kind.startswith("jpg") else {}))
        paths.append(path)
    return paths


def full_width_model(folder: Path, render_size: int = 256) -> Path:
    from colorcli import export
    from colorcli.models import registry

    generator = export.plain_weights(registry.build_generator("unet-sn").eval())
    model = export.to_onnx(generator, 18, render_size)
    for key, value in metadata.ModelInfo(arch="unet-sn", render_size=render_size).to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = folder / "unet-sn-full.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def encode_settings(path: Path) -> dict[str, object]:
    return (
        {"format": "JPEG", "quality": 92} if path.suffix == ".jpg" else {"format": "PNG", "compress_level": 3}
    )


def floor_seconds(
    paths: list[Path], model: runtime.LoadedModel, sizes: list[int], batch: int
) -> dict[str, float]:
    decode = sum(timed(lambda p=p: Image.open(p).load()) for p in paths)
    inference = 0.0
    for size in sizes:
        l_norm = np.zeros((batch, 1, size, size), np.float32)
        model.run(l_norm)
        for start in range(0, len(paths), batch):
            n = min(batch, len(paths) - start)
            inference += timed(lambda n=n, l_norm=l_norm: model.run(l_norm[:n]))
    encode = 0.0
    for p in paths:
        rgb = Image.open(p).convert("RGB")
        encode += timed(lambda rgb=rgb, p=p: rgb.save(io.BytesIO(), **encode_settings(p)))
    return {"decode": decode, "inference": inference, "encode": encode}


def pipeline_seconds(colorizer: pipeline.Colorizer, paths: list[Path], out: Path) -> float:
    jobs = [discovery.Job(p, out / p.name) for p in paths]
    options = pipeline.WriteOptions(overwrite=True)

    def run() -> None:
        results = list(colorizer.run(jobs, options))
        bad = [r for r in results if r.status != "ok"]
        if bad:
            raise SystemExit(f"pipeline failed: {bad[0]}")

    return timed(run)


def naive_one(path: Path, model: runtime.LoadedModel, sizes: list[int], out: Path) -> None:
    from skimage import color as skcolor

    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    lab = skcolor.rgb2lab(rgb)
    passes = []
    for size in sizes:
        small = Image.fromarray(lab[..., 0].astype(np.float32), "F").resize(
            (size, size), Image.Resampling.BILINEAR
        )
        passes.append(model.run(color.normalise_l(np.asarray(small))[None, None].astype(np.float32))[0])
    ab = passes[0] if len(passes) == 1 else render.blend_context(*passes, pipeline.CONTEXT_WEIGHT)
    ab = ab * color.AB_SCALE
    full = (rgb.shape[1], rgb.shape[0])
    for c in (0, 1):
        lab[..., c + 1] = np.asarray(Image.fromarray(ab[c], "F").resize(full, Image.Resampling.BILINEAR))
    result = (np.clip(skcolor.lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(result).save(out / path.name, **encode_settings(path))


# -- post-processing: numpy LUT vs an onnxruntime graph vs the float reference ----------------


def postprocess_graph() -> bytes:
    """upsample(ab) + Lab -> in-gamut linear sRGB -> 8-bit, as onnxruntime graph (needs onnx)."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: object) -> object:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32), name)
        )

    f32 = TensorProto.FLOAT
    lightness = render._grey_lightness8()
    n = helper.make_node
    nodes = [
        const("lut", lightness),
        const("k500", 1 / 500),
        const("k200", 1 / 200),
        const("k116", 1 / 116),
        const("c16", 16.0),
        const("abscale", color.AB_SCALE),
        const("thr", 6 / 29),
        const("kappa", 1 / color.KAPPA),
        const("c116", 116.0),
        const("white", np.asarray(color.WHITE_D65)),
        const("m", np.asarray(color.XYZ_TO_RGB).T),
        const("one", 1.0),
        const("zero", 0.0),
        const("lo", 0.0031308),
        const("c1292", 12.92),
        const("c1055", 1.055),
        const("c0055", 0.055),
        const("gam", 1 / 2.4),
        const("c255", 255.0),
        const("half", 0.5),
        n("Cast", ["grey"], ["gi"], to=TensorProto.INT32),
        n("Gather", ["lut", "gi"], ["L"]),
        n("Resize", ["ab", "", "", "sizes"], ["abu"], mode="linear"),
        n("Squeeze", ["abu"], ["ab2"]),  # (2, H, W)
        n("Mul", ["ab2", "abscale"], ["abl"]),
        n("Split", ["abl"], ["a3", "b3"], axis=0, num_outputs=2),
        n("Squeeze", ["a3"], ["a"]),
        n("Squeeze", ["b3"], ["b"]),
        n("Add", ["L", "c16"], ["l16"]),
        n("Mul", ["l16", "k116"], ["fy"]),
        n("Mul", ["a", "k500"], ["da"]),
        n("Add", ["fy", "da"], ["fx"]),
        n("Mul", ["b", "k200"], ["db"]),
        n("Sub", ["fy", "db"], ["fz"]),
        n("Unsqueeze", ["fx", "axis"], ["fx1"]),
        n("Unsqueeze", ["fy", "axis"], ["fy1"]),
        n("Unsqueeze", ["fz", "axis"], ["fz1"]),
        n("Concat", ["fx1", "fy1", "fz1"], ["f"], axis=-1),
        n("Mul", ["f", "f"], ["f2"]),
        n("Mul", ["f2", "f"], ["f3"]),
        n("Mul", ["f", "c116"], ["f116"]),
        n("Sub", ["f116", "c16"], ["fl"]),
        n("Mul", ["fl", "kappa"], ["flin"]),
        n("Greater", ["f", "thr"], ["big"]),
        n("Where", ["big", "f3", "flin"], ["xyz0"]),
        n("Mul", ["xyz0", "white"], ["xyz"]),
        n("MatMul", ["xyz", "m"], ["lin"]),
        n("Split", ["xyz"], ["_x", "y", "_z"], axis=-1, num_outputs=3),
        n("Clip", ["y", "zero", "one"], ["yc"]),
        # gamut: scale chroma towards the grey of the same Y until every channel fits
        n("Sub", ["lin", "yc"], ["d"]),
        n("Sub", ["one", "yc"], ["room"]),
        n("Div", ["room", "d"], ["tover"]),
        n("Neg", ["yc"], ["nyc"]),
        n("Div", ["nyc", "d"], ["tunder"]),
        n("Greater", ["lin", "one"], ["isover"]),
        n("Less", ["lin", "zero"], ["isunder"]),
        n("Where", ["isover", "tover", "one"], ["t1"]),
        n("Where", ["isunder", "tunder", "one"], ["t2"]),
        n("Min", ["t1", "t2"], ["t3"]),
        n("ReduceMin", ["t3", "axis"], ["t4"], keepdims=1),
        n("Clip", ["t4", "zero", "one"], ["t"]),
        n("Mul", ["t", "d"], ["td"]),
        n("Add", ["yc", "td"], ["lin2"]),
        n("Clip", ["lin2", "zero", "one"], ["lc"]),
        n("Pow", ["lc", "gam"], ["p"]),
        n("Mul", ["p", "c1055"], ["p2"]),
        n("Sub", ["p2", "c0055"], ["hi"]),
        n("Mul", ["lc", "c1292"], ["lo2"]),
        n("LessOrEqual", ["lc", "lo"], ["islo"]),
        n("Where", ["islo", "lo2", "hi"], ["s"]),
        n("Mul", ["s", "c255"], ["s255"]),
        n("Add", ["s255", "half"], ["sr"]),
        n("Cast", ["sr"], ["rgb"], to=TensorProto.UINT8),
    ]
    axis = numpy_helper.from_array(np.asarray([-1], np.int64), "axis")
    graph = helper.make_graph(
        nodes,
        "postprocess",
        [
            helper.make_tensor_value_info("grey", TensorProto.UINT8, ["H", "W"]),
            helper.make_tensor_value_info("ab", f32, [1, 2, "h", "w"]),
            helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]),
        ],
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["H", "W", 3])],
        initializer=[axis],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def bench_postprocess(render_size: int) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(postprocess_graph(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    # model outputs are smooth: a coarse random field, upsampled
    coarse = np.tanh(rng.normal(0, 0.4, (2, 8, 8))).astype(np.float32)
    ab = np.stack(
        [
            np.asarray(Image.fromarray(c, "F").resize((render_size,) * 2, Image.Resampling.BICUBIC))
            for c in coarse
        ]
    )
    render.rgbx_lut()
    print("\npost-processing (upsample a,b + Lab->sRGB 8-bit), seconds per image, best of 3:")
    print(f"{'MP':>4} {'numpy LUT':>10} {'ORT graph':>10} {'color.lab_to_rgb':>17} {'p99 |LUT-ORT|':>14}")
    for megapixels in (1, 4, 12):
        w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
        h = int(megapixels * 1e6 / w)
        grey = rng.integers(0, 256, (h, w), dtype=np.uint8)

        def numpy_path(grey: np.ndarray = grey) -> np.ndarray:
            rgbx = render.render8(grey, render.upsample_ab(ab, (grey.shape[1], grey.shape[0])))
            return np.asarray(rgbx)[..., :3]

        def ort_path(grey: np.ndarray = grey) -> np.ndarray:
            sizes = np.asarray([1, 2, grey.shape[0], grey.shape[1]], np.int64)
            return session.run(None, {"grey": grey, "ab": ab[None], "sizes": sizes})[0]

        def reference(grey: np.ndarray = grey) -> np.ndarray:
            size = (grey.shape[1], grey.shape[0])
            up = [np.asarray(Image.fromarray(c, "F").resize(size, Image.Resampling.BILINEAR)) for c in ab]
            lightness = color.grey_to_lightness(grey / np.float32(255))
            lab = np.stack([lightness, up[0] * color.AB_SCALE, up[1] * color.AB_SCALE], axis=-1)
            return (color.lab_to_rgb(lab) * 255 + 0.5).astype(np.uint8)

        times = [min(timed(fn) for _ in range(3)) for fn in (numpy_path, ort_path)]
        times.append(timed(reference))
        diff = np.abs(numpy_path().astype(int) - ort_path().astype(int))
        p99 = np.percentile(diff, 99)
        print(f"{megapixels:>4} {times[0]:>10.3f} {times[1]:>10.3f} {times[2]:>17.3f} {p99:>14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="ONNX model (default: a full-width unet-sn at 256)")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--naive-every", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--skip-postprocess", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-colorize-") as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        (root / "out").mkdir()
        (root / "naive").mkdir()
        model_path = args.model or full_width_model(root)
        paths = build_folder(root / "photos", args.count)
        megapixels = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in paths) / 1e6
        colorizer = pipeline.Colorizer(model_path, "cpu", batch_size=args.batch_size, workers=args.workers)
        loaded = colorizer.model
        size = colorizer.render_size
        sizes = [size, colorizer.context_size] if 0 < colorizer.context_size < size else [size]
        print(
            f"{len(paths)} photos, {megapixels:.0f} MP (0.3-12 MP), model {loaded.info.arch} at "
            f"{' + '.join(map(str, sizes))} on cpu"
        )

        pipeline_seconds(colorizer, paths[:2], root / "out")  # warm up: LUT, session, caches
        ours = pipeline_seconds(colorizer, paths, root / "out")
        floor = floor_seconds(paths, loaded, sizes, args.batch_size)
        floor_total = sum(floor.values())
        print(f"pipeline: {ours:.1f} s  {len(paths) / ours:.2f} images/s  {megapixels / ours:.1f} MP/s")
        print(
            "floor:    {:.1f} s  (decode {decode:.1f} + inference {inference:.1f} + encode {encode:.1f})  "
            "{:.2f} images/s".format(floor_total, len(paths) / floor_total, **floor)
        )
        print(f"ratio to floor: {floor_total / ours:.2f}  (target >= 0.80)")

        subset = paths[:: args.naive_every]
        ours_subset = pipeline_seconds(colorizer, subset, root / "out")
        naive = [timed(lambda p=p: naive_one(p, loaded, sizes, root / "naive")) for p in subset]
        print(
            f"naive per-image skimage version on {len(subset)} of the files: {sum(naive):.1f} s "
            f"(median {statistics.median(naive):.2f} s/image); pipeline on the same files {ours_subset:.1f} s"
        )
        print(f"ratio to naive: {sum(naive) / ours_subset:.2f}x  (target >= 5x)")
    if not args.skip_postprocess:
        bench_postprocess(size)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
