"""The export stage (needs torch for the torch side, onnx and onnxruntime for the ONNX side).

* :mod:`.reparam` — exact ConvTranspose2d -> Conv2d rewrites (stride 1, and stride s via sub-pixel conv).
* :mod:`.onnx_export` — torch -> FP32 ONNX with dynamic N/H/W and the ModelCfg in ``metadata_props``;
  :func:`~.onnx_export.verify_onnx` compares an export with torch through ONNX Runtime.

Import the submodules directly (``from edgedenoise.export.onnx_export import export_onnx``): this package
imports nothing heavy on its own.
"""
