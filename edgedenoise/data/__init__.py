"""Training data: patch sampling from image folders and on-the-fly noise models (needs torch)."""

from .noise import AWGN, BlindAWGN, PoissonGaussian, make_noise, noise_label
from .patches import PatchSampler, augment, load_folder

__all__ = [
    "AWGN",
    "BlindAWGN",
    "PatchSampler",
    "PoissonGaussian",
    "augment",
    "load_folder",
    "make_noise",
    "noise_label",
]
