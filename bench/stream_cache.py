"""Images larger than memory: peak memory (RSS) and images/s of kk's loaders over 20,000 generated
photos, images held in memory (``--cache memory``) against streamed from the packed file (``--cache
disk``), beside a plain hand-written in-memory equivalent (a list of decoded arrays and a Dataset).

Each variant runs in a fresh process, so its peak RSS is its own: build (or reuse) the cache, then
one training epoch of the DataLoader (kk's training transforms: random resized crop, flip, affine,
colour) over every image, batch 64. The photos are generated once into ``--dir`` (320 x 240 JPEGs).

    python bench/stream_cache.py [--n 20000] [--side 192] [--size 160] [--dir /tmp/kk-stream-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def generate(folder: Path, n: int) -> list[str]:
    """``n`` 320 x 240 JPEG photos of coloured ellipses on gradients (photo-like sizes, ~15 KB)."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"{i:05d}.jpg") for i in range(n)]

    def one(i: int) -> None:
        if os.path.exists(paths[i]):
            return
        rng = np.random.default_rng(i)
        base = np.linspace(0, 1, 320)[None, :, None] * rng.integers(0, 255, 3) + rng.integers(0, 60, 3)
        im = Image.fromarray(np.broadcast_to(base, (240, 320, 3)).clip(0, 255).astype(np.uint8))
        d = ImageDraw.Draw(im)
        for _ in range(4):
            x, y = rng.integers(0, 280), rng.integers(0, 200)
            d.ellipse((x, y, x + rng.integers(20, 120), y + rng.integers(20, 120)), fill=tuple(rng.integers(0, 255, 3)))
        im.save(paths[i], quality=90)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n)))
    return paths


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_epoch(loader) -> float:
    t, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += len(x)
    return seen / (time.perf_counter() - t)


def variant(name: str, paths: list[str], side: int, size: int, cache: Path) -> dict:
    """Runs in its own process: build the images, one epoch; figures as a dict."""
    import torch

    from kagglekit.vision.config import TrainConfig
    from kagglekit.vision.data import build_transforms
    from kagglekit.vision.loaders import Loaders

    torch.set_num_threads(2)
    base = rss_mb()
    y = np.zeros((len(paths), 1), np.float32)
    t = time.perf_counter()
    if name == "hand-written, in memory":
        from PIL import Image

        def load(p: str) -> np.ndarray:
            with Image.open(p) as im:
                im = im.convert("RGB")
                s = side / min(im.size)
                return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC))

        images = [load(p) for p in paths]
        tf = build_transforms(size, (0.5,) * 3, (0.25,) * 3, train=True, seed=0)

        class Plain(torch.utils.data.Dataset):
            def __len__(self) -> int:
                return len(images)

            def __getitem__(self, i: int):
                x = tf(image=images[i])["image"]
                return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), torch.from_numpy(y[i])

        loader = torch.utils.data.DataLoader(Plain(), batch_size=64, shuffle=True, drop_last=True)
    else:
        from kagglekit.vision.packed import open_images

        images, _ = open_images(paths, side, cache, mode="memory" if "memory" in name else "disk")
        cfg = TrainConfig(batch_size=64, num_workers=0)
        loader = Loaders(images, y, cfg, (0.5,) * 3, (0.25,) * 3, ("crop", 0.875), 0)(np.arange(len(paths)), size,
                                                                                    train=True)
    built = time.perf_counter() - t
    after_build = rss_mb()
    rate = one_epoch(loader)
    return {"variant": name, "build_s": built, "rss_base_mb": base, "rss_after_build_mb": after_build,
            "rss_peak_mb": rss_mb(), "img_per_s": rate}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--side", type=int, default=192, help="cached shorter side")
    ap.add_argument("--size", type=int, default=160, help="training crop")
    ap.add_argument("--dir", default="/tmp/kk-stream-bench")
    ap.add_argument("--variant")
    args = ap.parse_args()
    root = Path(args.dir)
    if args.variant:  # the child process
        paths = sorted(str(p) for p in (root / "photos").glob("*.jpg"))[:args.n]
        print(json.dumps(variant(args.variant, paths, args.side, args.size, root / "cache")))
        return
    t = time.perf_counter()
    paths = generate(root / "photos", args.n)
    print(f"{len(paths)} photos (320x240 JPEG) in {root / 'photos'} ({time.perf_counter() - t:.0f}s); cached shorter "
          f"side {args.side}, training crop {args.size}, batch 64, 2 threads, no DataLoader workers")
    rows = []
    for name in ("hand-written, in memory", "kk --cache memory", "kk --cache disk", "kk --cache disk (reused)"):
        r = subprocess.run([sys.executable, __file__, "--variant", name.replace(" (reused)", ""), "--n", str(args.n),
                            "--side", str(args.side), "--size", str(args.size), "--dir", args.dir],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        rows.append({**json.loads(r.stdout.strip().splitlines()[-1]), "variant": name})
        print(f"  done: {name}", flush=True)
    packed = sum(p.stat().st_size for p in (root / "cache").rglob("*.u8"))
    print(f"\npacked file: {packed / 2**20:.0f} MB on disk\n")
    print(f"{'variant':<28} {'build s':>8} {'RSS after build MB':>19} {'peak RSS MB':>12} {'img/s (epoch)':>14}")
    for r in rows:
        print(f"{r['variant']:<28} {r['build_s']:>8.1f} {r['rss_after_build_mb']:>19.0f} {r['rss_peak_mb']:>12.0f} "
              f"{r['img_per_s']:>14.0f}")


if __name__ == "__main__":
    main()
