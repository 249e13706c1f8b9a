"""Training throughput (images/s) of `kk train` against a minimal hand-written timm + PyTorch loop,
same data (mnist-tiny, fold 0's training rows), same arch, image size and batch, one after the other
in this script. The hand-written loop preloads tensors and does no augmentation: the floor of what
kagglekit's pipeline (albumentations, per-target heads, schedule, checkpoints) may cost."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from _common import REPO, SHARED, need_shared

ARCH, SIZE, BATCH, EPOCHS = "resnet18", 64, 32, 2


def hand_written(paths: list[str], labels: np.ndarray) -> float:
    import timm
    import torch
    from PIL import Image

    torch.manual_seed(0)
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE))) for p in paths])
    x = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.45) / 0.225
    y = torch.from_numpy(labels).long()
    model = timm.create_model(ARCH, pretrained=False, num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                                         drop_last=True)
    rates = []
    for _ in range(EPOCHS):
        model.train()
        t, n = time.perf_counter(), 0
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(xb)
        rates.append(n / (time.perf_counter() - t))
    return rates[-1]  # after warm-up


if __name__ == "__main__":
    need_shared("mnist-tiny")
    os.environ["KK_DATA_DIR"] = str(SHARED)
    sys.path.insert(0, str(REPO))
    import pandas as pd
    import torch

    from kagglekit.data import load_data
    from kagglekit.folds import get_folds
    from kagglekit.vision import TrainConfig, train
    from kagglekit.workspace import Workspace

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    ws = Workspace.at(REPO)
    comp = ws.competition("mnist-tiny")
    data = load_data(comp, ws)
    folds = get_folds(data, ws)
    tr = np.flatnonzero(folds.fold != 0)
    labels = (data.train["label"].astype(str).to_numpy()[tr] == "7").astype(int)
    hand = hand_written(data.train["path"].to_numpy()[tr].tolist(), labels)
    r = train(comp, TrainConfig(arch=ARCH, sizes=(SIZE,), batch_size=BATCH, epochs=EPOCHS, folds=(0,),
                                pretrained=False, flip=False), workspace=ws, submit=False)
    hist = pd.read_csv(r.run.path / "history.csv")
    kk_rate = float(hist["images_per_s"].iloc[-1])
    print(f"{ARCH} {SIZE}px batch {BATCH}, {len(tr)} training images, {torch.get_num_threads()} threads, "
          f"last of {EPOCHS} epochs")
    print(f"  hand-written timm loop (preloaded tensors, no augmentation)  {hand:7.1f} img/s")
    print(f"  kk train (albumentations, heads, one-cycle, checkpoints)      {kk_rate:7.1f} img/s "
          f"({kk_rate / hand:.0%} of hand-written)")
    print("bar: kk train >= 90% of hand-written:", "met" if kk_rate >= 0.9 * hand else "NOT met")
