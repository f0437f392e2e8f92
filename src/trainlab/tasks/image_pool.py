"""The image pool (history buffer) of CycleGAN's discriminator updates.

Shrivastava et al. (2017) and Zhu et al. (2017, §4): a discriminator trained only on the
generator's latest images chases it and oscillates; trained on a mix of the latest and older
ones, it is steadier. The pool keeps up to ``size`` (50) generated images. Until it is full,
every incoming image is stored and passed through; after that each incoming image, with
probability 1/2, is passed through, else swapped with a random stored one, which is returned
in its place.
"""

from __future__ import annotations

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """A history buffer of ``size`` images; ``size`` 0 passes every batch through unchanged.

    The random choices come from the global CPU generator (saved in checkpoints, and no host
    sync on an accelerator); the stored images are part of :meth:`state_dict`, so a resumed run
    draws from the same history.

    >>> pool = ImagePool(2)
    >>> out = pool.query(torch.zeros(3, 1, 2, 2))   # the first 2 fill the pool
    >>> out.shape, len(pool)
    (torch.Size([3, 1, 2, 2]), 2)
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be ≥ 0 (got {size})")
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch (N, C, H, W) the discriminator sees in place of ``images`` (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images and self.images[0].device != images.device:  # restored on the CPU
            self.images = [im.to(images.device) for im in self.images]
        # Drawn for every image, whatever the pool's state: the RNG stream does not depend on
        # how full the pool is.
        swap = (torch.rand(len(images)) < 0.5).tolist()
        slots = torch.randint(self.size, (len(images),)).tolist()
        out = []
        for image, s, slot in zip(images.float(), swap, slots):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif s:
                out.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        stored = torch.stack(self.images) if self.images else torch.zeros(0)
        return {"images": stored}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        stored = state.get("images")
        self.images = list(stored.unbind(0)) if stored is not None and stored.dim() > 1 else []
