"""edgedenoise: image-denoising CNNs from PyTorch training to ONNX / TensorRT on the edge.

Layout (see README "Layout"): ``edgedenoise`` is the training side (models, data, training, compression,
CLI; needs torch only where it trains or exports), ``edgedenoise.export`` comes from the top-level ``export/``
folder and ``edgedenoise.runtime`` from ``runtime/`` (numpy + onnxruntime, never torch). Importing this
package imports nothing heavy.
"""

__version__ = "0.1.0"
