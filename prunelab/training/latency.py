"""Wall-clock inference latency: median of repeated timed forward passes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def measure_latency_ms(forward: nn.Module | Callable[[torch.Tensor], torch.Tensor], batch_size: int,
                       input_shape: tuple[int, ...] = (3, 32, 32), repeats: int = 20, warmup: int = 3,
                       device: str | torch.device = "cpu") -> float:
    """Median milliseconds per forward pass of a batch of `batch_size` random images."""
    x = torch.randn((batch_size, *input_shape), device=device)
    if isinstance(forward, nn.Module):
        forward.eval()
    cuda = torch.device(device).type == "cuda"
    times = []
    with torch.inference_mode():
        for step in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            forward(x)
            if cuda:
                torch.cuda.synchronize()
            if step >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)
