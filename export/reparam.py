"""Exact re-parameterisations of a torch model for deployment: every ConvTranspose2d becomes a Conv2d.

Why: ONNX Runtime's CPU INT8 path leaves ConvTranspose in float (in ONNX Runtime 1.32 only Conv becomes
QLinearConv), and TensorRT has INT8-deconvolution pitfalls, so half of RED-Net would stay in FP32. Both rewrites
below are exact in real arithmetic; in float32 they differ from the original only by summation order (about 1e-7).

**Stride 1** (Mao et al. 2016 use only these): a transposed convolution with kernel ``W`` (shape
``(C_in, C_out, kh, kw)``), padding ``p`` and dilation 1 equals a convolution with the kernel flipped in both
spatial axes and its in/out axes swapped, ``W'[o, i] = W[i, o, ::-1, ::-1]``, and padding ``k - 1 - p``
(Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285, Sec. 4.1).

**Stride s > 1** (sub-pixel decomposition; Shi et al., "Real-Time Single Image and Video Super-Resolution
Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016, Sec. 2.2, and Dumoulin & Visin Sec. 4.6):
output pixel ``o = s*m + a`` (phase ``a`` in ``0..s-1``) of a transposed conv receives input pixel ``i`` through
tap ``k = a + p - s*(i - m)``. For each phase this is an ordinary convolution of the input over the offsets
``d = i - m``; stacking the ``s*s`` phases as ``s*s*C_out`` channels and interleaving them with
``PixelShuffle(s)`` (ONNX ``DepthToSpace``, mode CRD) gives the transposed conv exactly when its output is
``s*H`` (``k + output_padding - 2p == s``; e.g. the ``k3/p1/output_padding 1`` stride-2 layer of
``rednet*_s2``). The offsets span ``d_min..d_max``, so the convolution has kernel ``d_max - d_min + 1``
(2x2 for k3/p1/s2) on the input zero-padded by ``-d_min`` before and ``d_max`` after (0 and 1 for k3/p1/s2).
The asymmetric pad is a separate ``nn.ZeroPad2d`` here; :mod:`.onnx_export` folds it into the Conv's ``pads``.

**Space-to-depth folded into the next convolution** (models that run their conv stack on a pixel-unshuffled
image, e.g. ``SlimRED``): ``PixelUnshuffle(s)`` followed by a ``k x k`` Conv with padding ``p`` and stride 1
reads input pixel ``(s*(y + ky - p) + i, s*(x + kx - p) + j)`` of channel ``c`` through weight
``W[o, c*s*s + i*s + j, ky, kx]``: it is one Conv on the full-resolution image with kernel ``s*k``, stride
``s``, padding ``s*p`` and weight ``W'[o, c, s*ky + i, s*kx + j] = W[o, c*s*s + i*s + j, ky, kx]`` (zero padding
of ``p`` low-resolution pixels is zero padding of ``s*p`` full-resolution ones). Same MACs per pixel; what goes is
the 6-D Transpose ONNX Runtime runs for the unshuffle, measured at 1920x1080 on this project's 2-core CPU:
PixelUnshuffle(4) + Conv 3x3 (16 -> 32) 32.9 ms, ONNX SpaceToDepth + the same Conv 18.4 ms, the folded 12x12
stride-4 Conv 11.3 ms (docs/compression.md). A model opts in by naming the pair in ``fold_unshuffle``
(``(unshuffle_attr, conv_attr)``): it promises that the PixelUnshuffle's output goes to that Conv only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .errors import ExportError


class SubPixelConv(nn.Sequential):
    """The stride-``s`` ConvTranspose2d replacement: ``ZeroPad2d -> Conv2d(C_in, s*s*C_out) -> PixelShuffle(s)``.

    Input ``(N, C_in, H, W)`` float32 -> output ``(N, C_out, s*H, s*W)``.
    """

    def __init__(self, pad: tuple[int, int, int, int], conv: nn.Conv2d, scale: int) -> None:
        super().__init__(nn.ZeroPad2d(pad), conv, nn.PixelShuffle(scale))


def _axis_offsets(k: int, s: int, p: int) -> tuple[int, int]:
    """``(d_min, d_max)`` of the input offsets ``d = (a + p - t) / s`` over all phases ``a`` and taps ``t``."""
    ds = [(a + p - t) // s for a in range(s) for t in range(k) if (a + p - t) % s == 0]
    return min(ds), max(ds)


def _check_supported(name: str, m: nn.ConvTranspose2d) -> None:
    why = None
    if m.groups != 1:
        why = f"groups={m.groups} (only 1 is supported)"
    elif tuple(m.dilation) != (1, 1):
        why = f"dilation={tuple(m.dilation)} (only 1 is supported)"
    elif m.padding_mode != "zeros":
        why = f"padding_mode={m.padding_mode!r} (only 'zeros' is supported)"
    elif not isinstance(m.padding, tuple) or isinstance(m.padding, str):
        why = f"padding={m.padding!r}"
    else:
        sh, sw = m.stride
        if sh != sw:
            why = f"stride={m.stride} (both axes must have the same stride)"
        elif sh > 1:
            for k, p, op in zip(m.kernel_size, m.padding, m.output_padding, strict=True):
                if k + op - 2 * p != sh:
                    why = (
                        f"kernel {m.kernel_size}, padding {m.padding}, output_padding {m.output_padding} with stride "
                        f"{sh}: the output is not exactly {sh}x the input (need kernel + output_padding - 2*padding "
                        "== stride)"
                    )
        elif any(p > k - 1 for k, p in zip(m.kernel_size, m.padding, strict=True)):
            why = f"padding {m.padding} larger than kernel - 1"
    if why is not None:
        raise ExportError(
            f"cannot re-parameterise ConvTranspose2d {name!r}: {why}; export with reparam=False (--no-reparam)"
        )


@torch.no_grad()
def conv_from_transposed(m: nn.ConvTranspose2d, name: str = "") -> nn.Module:
    """An exact Conv2d-based replacement of a ConvTranspose2d (see the module docstring).

    Args:
        m: a ``ConvTranspose2d`` with groups 1, dilation 1, zero padding, and equal strides; for stride > 1 its
            output must be exactly ``stride`` times its input (``kernel + output_padding - 2*padding == stride``).
        name: the layer's name, for error messages.

    Returns:
        ``nn.Conv2d`` for stride 1, :class:`SubPixelConv` for stride > 1; same dtype/device as ``m``, mapping
        ``(N, C_in, H, W)`` to the same output as ``m``.

    Raises:
        ExportError: the layer is not one of the supported forms.
    """
    _check_supported(name, m)
    w = m.weight  # (C_in, C_out, kh, kw)
    c_in, c_out, kh, kw = w.shape
    s = int(m.stride[0])
    ph, pw = int(m.padding[0]), int(m.padding[1])
    has_bias = m.bias is not None
    if s == 1:
        conv = nn.Conv2d(c_in, c_out, (kh, kw), padding=(kh - 1 - ph, kw - 1 - pw), bias=has_bias)
        conv = conv.to(device=w.device, dtype=w.dtype)
        conv.weight.copy_(w.transpose(0, 1).flip(2, 3))
        if m.bias is not None:
            assert conv.bias is not None
            conv.bias.copy_(m.bias)
        return conv
    dh_min, dh_max = _axis_offsets(kh, s, ph)
    dw_min, dw_max = _axis_offsets(kw, s, pw)
    nkh, nkw = dh_max - dh_min + 1, dw_max - dw_min + 1
    new_w = torch.zeros(c_out * s * s, c_in, nkh, nkw, dtype=w.dtype, device=w.device)
    wt = w.transpose(0, 1)  # (C_out, C_in, kh, kw)
    for a in range(s):
        for th in range(nkh):
            tap_h = a + ph - s * (th + dh_min)
            if not 0 <= tap_h < kh:
                continue
            for b in range(s):
                for tw in range(nkw):
                    tap_w = b + pw - s * (tw + dw_min)
                    if 0 <= tap_w < kw:
                        # PixelShuffle reads channel c*s*s + a*s + b into output (s*m + a, s*n + b) of channel c.
                        new_w[a * s + b :: s * s, :, th, tw] = wt[:, :, tap_h, tap_w]
    conv = nn.Conv2d(c_in, c_out * s * s, (nkh, nkw), bias=has_bias).to(device=w.device, dtype=w.dtype)
    conv.weight.copy_(new_w)
    if m.bias is not None:
        assert conv.bias is not None
        conv.bias.copy_(m.bias.repeat_interleave(s * s))
    return SubPixelConv((-dw_min, dw_max, -dh_min, dh_max), conv, s)


@torch.no_grad()
def conv_from_unshuffle(unshuffle: nn.PixelUnshuffle, conv: nn.Conv2d, name: str = "") -> nn.Conv2d:
    """The single strided Conv2d equal to ``conv(unshuffle(x))`` (module docstring, third rewrite).

    Input ``(N, C, H, W)`` float32, H and W multiples of the unshuffle factor ``s`` -> ``(N, C_out, H/s, W/s)``.

    Raises:
        ExportError: ``conv`` is not a plain stride-1, dilation-1, groups-1, zero-padded Conv with symmetric
            integer padding, or its input channels are not a multiple of ``s*s`` (the message names it).
    """
    s = int(unshuffle.downscale_factor)
    why = None
    if conv.groups != 1 or tuple(conv.dilation) != (1, 1) or tuple(conv.stride) != (1, 1):
        why = f"groups={conv.groups}, dilation={tuple(conv.dilation)}, stride={tuple(conv.stride)} (need 1, 1, 1)"
    elif conv.padding_mode != "zeros" or not isinstance(conv.padding, tuple):
        why = f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r} (need integers, 'zeros')"
    elif conv.in_channels % (s * s):
        why = f"in_channels={conv.in_channels} is not a multiple of {s * s}"
    if why:
        raise ExportError(f"cannot fold the pixel-unshuffle into {name or 'its Conv2d'}: {why}")
    c_out, c_in_s2, kh, kw = conv.weight.shape
    c_in = c_in_s2 // (s * s)
    # (O, C*s*s, kh, kw) -> (O, C, i, j, kh, kw) -> (O, C, kh, i, kw, j) -> (O, C, s*kh, s*kw)
    w = conv.weight.reshape(c_out, c_in, s, s, kh, kw).permute(0, 1, 4, 2, 5, 3).reshape(c_out, c_in, s * kh, s * kw)
    assert isinstance(conv.padding, tuple)  # checked above: not a string
    ph, pw = (int(v) for v in conv.padding)
    fused = nn.Conv2d(c_in, c_out, (s * kh, s * kw), stride=s, padding=(s * ph, s * pw), bias=conv.bias is not None).to(
        device=w.device, dtype=w.dtype
    )
    fused.weight.copy_(w)
    if conv.bias is not None:
        assert fused.bias is not None
        fused.bias.copy_(conv.bias)
    return fused


def reparameterize(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` in eval mode with every ``ConvTranspose2d`` replaced by its exact Conv2d form
    and, where the model declares one in ``fold_unshuffle``, its pixel-unshuffle folded into the Conv it feeds.

    The input model is not modified. Attributes such as ``cfg`` and ``build_overrides`` are carried by the copy.

    Returns:
        ``(new_model, names)``: the rewritten copy (same ``(N, C, H, W) -> (N, C, H, W)`` float32 mapping up to
        float rounding) and the dotted names of the replaced layers.

    Raises:
        ExportError: a ConvTranspose2d that has no exact Conv2d form here (the message names it).
    """
    new = copy.deepcopy(model).eval()
    replaced: list[str] = []
    for name, mod in list(new.named_modules()):
        if isinstance(mod, nn.ConvTranspose2d):
            parent_name, _, child = name.rpartition(".")
            parent = new.get_submodule(parent_name) if parent_name else new
            setattr(parent, child, conv_from_transposed(mod, name))
            replaced.append(name)
    pair = getattr(new, "fold_unshuffle", None)
    if pair:
        un_name, conv_name = pair
        un, conv = getattr(new, un_name), getattr(new, conv_name)
        if isinstance(un, nn.PixelUnshuffle) and isinstance(conv, nn.Conv2d):
            setattr(new, conv_name, conv_from_unshuffle(un, conv, conv_name))
            setattr(new, un_name, nn.Identity())
            replaced += [un_name, conv_name]
    return new, replaced
