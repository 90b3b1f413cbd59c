"""Training crops: one random 256x256 patch per image per epoch, reproducible on resume.

A crop depends only on ``(seed, epoch, index)``, never on worker scheduling or
on how many batches ran before, so a job resumed at epoch ``e`` sees exactly
the crops (and, through :class:`EpochShuffleSampler`, the order) it would have
seen had it never stopped.

Images smaller than the crop are padded by reflection, not upscaled: upscaling
would feed the codec interpolated, unnaturally smooth pixels and bias its rate
model; reflection keeps native pixel statistics.  With the COCO filter (both
sides > 256) padding never happens on the paper's data; it only guards odd inputs.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import CsalicError, UnreadableImageError
from ..imageio import to_rgb
from .coco import ManifestRow, read_manifest

log = logging.getLogger(__name__)

def load_image(path: str | os.PathLike) -> Image.Image:
    """Open with EXIF orientation applied: the codec must see the picture the annotator saw."""
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise CsalicError(f"training image {path} is missing: re-run `csalic filter-coco` to rebuild the manifest") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImageError(f"cannot decode training image {path} ({exc})") from None


def to_rgb_float(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 HxWx3 in [0, 1], by the same conversion as ``csalic compress`` and the
    evaluation (:func:`csalic.imageio.to_rgb`), so the codec trains on the pixels it will be given."""
    return np.asarray(to_rgb(img), dtype=np.float32) / 255.0


class RandomCropDataset(Dataset):
    """Manifest rows -> float tensors 3 x crop x crop in [0, 1].

    ``manifest`` is a manifest CSV path or a sequence of :class:`ManifestRow`.
    The epoch lives in a shared-memory tensor so that ``set_epoch`` reaches
    persistent DataLoader workers, which hold their own copy of the dataset.
    """

    def __init__(self, manifest: str | os.PathLike | Sequence[ManifestRow], image_root: str | os.PathLike,
                 crop: int = 256, seed: int = 0, cache_mb: float = 256):
        rows = read_manifest(manifest) if isinstance(manifest, (str, os.PathLike)) else list(manifest)
        if not rows:
            raise CsalicError("the training manifest lists no images: check the filter summary "
                              "(rule, --min-side) or the image root")
        if int(crop) < 1:
            raise CsalicError(f"crop size must be positive, got {crop}")
        if int(seed) < 0:
            raise CsalicError(f"seed must be a non-negative integer, got {seed}")
        root = Path(image_root)
        # plain strings: cheap to pickle into every worker
        self.paths = [str(root / r.path) for r in rows]
        self.crop = int(crop)
        self.seed = int(seed)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.skipped: set[str] = set()  # undecodable images met so far (in this process)
        # decoded images kept (per process) up to cache_mb: a small set is decoded once, not once per
        # crop (PNG decoding was 7 % of a demo training step); a large one fills it and reads the rest
        self._cache: dict[int, Image.Image] = {}
        self._cache_left = int(float(cache_mb) * 2**20)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Call before iterating the loader for an epoch (before ``iter(loader)``)."""
        if int(epoch) < 0:
            raise CsalicError(f"epoch must be non-negative, got {epoch}")
        self._epoch.fill_(int(epoch))

    def crop_origin(self, index: int, width: int, height: int) -> tuple[int, int]:
        """Top-left corner of the crop for this (seed, epoch, index)."""
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        x = int(rng.integers(0, max(width - self.crop, 0) + 1))
        y = int(rng.integers(0, max(height - self.crop, 0) + 1))
        return x, y

    def _readable(self, index: int) -> tuple[int, Image.Image]:
        """The image at ``index``, or, if it cannot be decoded, the next one that can (named in a warning).

        The substitute depends only on the index, so batches stay reproducible on resume.
        """
        for k in range(len(self.paths)):
            i = (index + k) % len(self.paths)
            if i in self._cache:
                return i, self._cache[i]
            try:
                img = load_image(self.paths[i])
            except UnreadableImageError as exc:
                if self.paths[i] not in self.skipped:
                    self.skipped.add(self.paths[i])
                    log.warning("%s; skipped (%d unreadable training image(s) so far)", exc, len(self.skipped))
                continue
            size = img.width * img.height * len(img.getbands())
            if size <= self._cache_left:
                self._cache[i] = img
                self._cache_left -= size
            return i, img
        raise CsalicError(f"none of the {len(self.paths)} training images can be decoded")

    def __getitem__(self, index: int) -> torch.Tensor:
        index, img = self._readable(index)
        w, h = img.size
        x, y = self.crop_origin(index, w, h)
        img = img.crop((x, y, x + min(self.crop, w), y + min(self.crop, h)))
        a = to_rgb_float(img)
        ph, pw = self.crop - a.shape[0], self.crop - a.shape[1]
        if ph > 0 or pw > 0:
            mode = "reflect" if min(a.shape[:2]) > 1 else "edge"
            a = np.pad(a, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode=mode)
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _mix(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence((int(seed), int(epoch), 0x5EED)).generate_state(1, np.uint64)[0]) >> 1


class EpochShuffleSampler(Sampler[int]):
    """A permutation that is a function of (seed, dataset epoch): resumable, unlike RandomSampler."""

    def __init__(self, dataset: RandomCropDataset, seed: int | None = None, shuffle: bool = True):
        self.dataset = dataset
        self.seed = dataset.seed if seed is None else int(seed)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if not self.shuffle:
            return iter(range(n))
        g = torch.Generator()
        g.manual_seed(_mix(self.seed, getattr(self.dataset, "epoch", 0)))
        return iter(torch.randperm(n, generator=g).tolist())


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in each worker from torch's per-worker seed (fork would copy one state)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset: Dataset, batch_size: int, workers: int = 0, shuffle: bool = True,
                seed: int | None = None, drop_last: bool = True, pin_memory: bool = False,
                prefetch_factor: int = 2) -> DataLoader:
    """A DataLoader with persistent, seeded workers and a resumable shuffle order."""
    if int(batch_size) < 1:
        raise CsalicError(f"batch size must be at least 1, got {batch_size}")
    if int(workers) < 0:
        raise CsalicError(f"workers must be >= 0, got {workers}")
    if seed is None:
        seed = getattr(dataset, "seed", 0)
    sampler = EpochShuffleSampler(dataset, seed, shuffle) if hasattr(dataset, "epoch") else None
    g = torch.Generator()
    g.manual_seed(int(seed))
    kw = dict(persistent_workers=True, prefetch_factor=prefetch_factor) if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        sampler=sampler,
        shuffle=(shuffle if sampler is None else None),
        num_workers=int(workers),
        worker_init_fn=seed_worker,
        generator=g,
        drop_last=drop_last,
        pin_memory=pin_memory,
        **kw,
    )
