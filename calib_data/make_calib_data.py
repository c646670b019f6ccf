"""Regenerate calib_data/ from the training sets in ../shared/data (run from the repository root).

    .venv/bin/python calib_data/make_calib_data.py

* ``gray/``: 49 calibration images, the central 128x128 crop of every 8th of the first 392 Train400 images
  (``test_001.png``, ``test_009.png``, ...). The last 8 Train400 images (``test_393..400``) are the trainer's
  validation hold-out (``data.val_holdout: 8``) and are not used.
* ``val_gray/``: 16 quality-gate images, 112x112 crops of CBSD432 photos converted to gray with Pillow's
  ITU-R 601-2 luma (``convert("L")``), every 27th image in sorted order, crop offset alternating between the
  centre and the upper-left third. CBSD432 shares no image with CBSD68/BSD68 (../shared/data/README.md).

* ``rgb/``: 32 colour calibration images, the central 96x96 crop of CBSD432 photos: every 13th of the first 424
  in sorted order, skipping the photos ``val_gray/`` uses (the last 8 are the colour trainer's hold-out).
* ``val_rgb/``: 16 colour quality-gate images, two 96x96 crops (centre and upper-left third) of each of the last
  8 CBSD432 photos: the colour trainer's validation hold-out (``data.val_holdout: 8``), which no colour model
  trains on, and disjoint from ``rgb/``.

No image comes from a test set (Set12, BSD68, CBSD68, McMaster, Urban100).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"


def _crop(im: Image.Image, size: int, where: str) -> Image.Image:
    w, h = im.size
    if where == "centre":
        x, y = (w - size) // 2, (h - size) // 2
    else:
        x, y = w // 3 - size // 2, h // 3 - size // 2
    return im.crop((x, y, x + size, y + size))


def main() -> None:
    train = sorted((DATA / "Train400").glob("*.png"))
    assert len(train) == 400, len(train)
    calib = train[:392][::8]
    out = ROOT / "gray"
    out.mkdir(exist_ok=True)
    for p in calib:
        with Image.open(p) as im:
            _crop(im.convert("L"), 128, "centre").save(out / p.name, optimize=True)
    photos = sorted((DATA / "CBSD432").glob("*.jpg"))
    val = ROOT / "val_gray"
    val.mkdir(exist_ok=True)
    for i, p in enumerate(photos[::27][:16]):
        with Image.open(p) as im:
            _crop(im.convert("L"), 112, "centre" if i % 2 == 0 else "third").save(
                val / f"cbsd432_{p.stem}.png", optimize=True
            )
    print(f"{len(calib)} calibration images in {out}, {len(list(val.iterdir()))} validation images in {val}")
    gate_idx = set(range(0, len(photos), 27)[:16])
    colour = [p for i, p in enumerate(photos[:424]) if i not in gate_idx][::13][:32]
    rgb = ROOT / "rgb"
    rgb.mkdir(exist_ok=True)
    for p in colour:
        with Image.open(p) as im:
            _crop(im.convert("RGB"), 96, "centre").save(rgb / f"cbsd432_{p.stem}.png", optimize=True)
    val_rgb = ROOT / "val_rgb"
    val_rgb.mkdir(exist_ok=True)
    for p in photos[-8:]:
        with Image.open(p) as im:
            for where in ("centre", "third"):
                _crop(im.convert("RGB"), 96, where).save(val_rgb / f"cbsd432_{p.stem}_{where}.png", optimize=True)
    print(f"{len(colour)} colour calibration images in {rgb}, 16 colour validation images in {val_rgb}")


if __name__ == "__main__":
    main()
