"""Batch iteration with augmentation done on whole batches of uint8 tensors (airbench style).

Images live on the target device once, as uint8. Each batch is gathered, randomly cropped from a
reflect-padded copy (padded once and cached), randomly flipped with a mask and ``torch.where``, and
normalised to float. Shuffling and augmentation draw from a CPU ``torch.Generator`` seeded with
``seed + epoch`` (call :meth:`BatchLoader.set_epoch`), so batches are identical on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F


def _stats_tensor(values: Sequence[float], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(list(values), dtype=torch.float32, device=device).view(1, -1, 1, 1).to(dtype)


def normalize(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 images ``[B,C,H,W]`` (or ``[C,H,W]``) -> float ``(x/255 - mean) / std`` on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    squeeze = images.dim() == 3
    x = images.unsqueeze(0) if squeeze else images
    m = torch.as_tensor(list(mean), dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(list(std), dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    out = ((x.float() / 255.0 - m) / s).to(dtype)
    return out[0] if squeeze else out


def reflect_pad(images: torch.Tensor, pad: int, chunk: int = 4096) -> torch.Tensor:
    """Reflect-pad uint8 images by ``pad`` pixels on every side (chunked to bound float memory)."""
    if pad <= 0:
        return images
    parts = []
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        parts.append(F.pad(part, (pad, pad, pad, pad), mode="reflect").to(torch.uint8))
    if not parts:
        _, c, h, w = images.shape
        return images.new_zeros((0, c, h + 2 * pad, w + 2 * pad))
    return torch.cat(parts)


class BatchLoader:
    """Iterate ``(x, y, idx)`` batches over uint8 images held on ``device``.

    ``x`` is float ``[B,3,H,W]`` normalised with ``mean``/``std`` (``dtype``, optionally
    channels_last), ``y`` int64 labels and ``idx`` int64 dataset positions, all on ``device``.
    With ``augment`` each image gets a random crop from the ``pad``-reflect-padded image and, when
    ``hflip``, a random horizontal flip. Order and augmentation depend only on ``seed + epoch``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool,
        augment: bool,
        hflip: bool = True,
        pad: int = 4,
        device: str | torch.device = "cpu",
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"images must be uint8 [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if pad < 0:
            raise ValueError("pad must be >= 0")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.shuffle = shuffle
        self.augment = augment
        self.hflip = hflip
        self.pad = int(pad)
        self.seed = int(seed)
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.dtype = dtype
        self.epoch = 0
        self._padded: torch.Tensor | None = None
        self._mean_t = _stats_tensor(self.mean, self.device, torch.float32)
        self._std_t = _stats_tensor(self.std, self.device, torch.float32)

    @property
    def num_samples(self) -> int:
        """Number of images the loader iterates over."""
        return int(self.images.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream (``seed + epoch``) used by the next iteration."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.num_samples
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def _padded_images(self) -> torch.Tensor:
        if self._padded is None:
            self._padded = reflect_pad(self.images, self.pad)
        return self._padded

    def _crop(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Random ``H x W`` crops of the padded images ``idx`` (one offset per image)."""
        padded = self._padded_images()
        _, _, h, w = self.images.shape
        b = idx.shape[0]
        span = 2 * self.pad + 1
        sy = torch.randint(0, span, (b,), generator=g).to(self.device)
        sx = torch.randint(0, span, (b,), generator=g).to(self.device)
        rows = sy.view(b, 1) + torch.arange(h, device=self.device).view(1, h)  # [B,H]
        cols = sx.view(b, 1) + torch.arange(w, device=self.device).view(1, w)  # [B,W]
        ph, pw = padded.shape[2], padded.shape[3]
        flat = (rows.view(b, h, 1) * pw + cols.view(b, 1, w)).view(b, 1, h * w)
        c = padded.shape[1]
        base = padded[idx].view(b, c, ph * pw)
        return torch.gather(base, 2, flat.expand(b, c, h * w)).view(b, c, h, w)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        n = self.num_samples
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self._crop(idx, g) if self.augment and self.pad > 0 else self.images[idx]
            if self.augment and self.hflip:
                flip = (torch.rand(idx.shape[0], generator=g) < 0.5).to(self.device).view(-1, 1, 1, 1)
                x = torch.where(flip, x.flip(-1), x)
            xf = ((x.float() / 255.0 - self._mean_t) / self._std_t).to(self.dtype)
            memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
            xf = xf.contiguous(memory_format=memory_format)
            yield xf, self.labels[idx], idx
