"""Benchmark core, torch-free: latency percentiles, throughput, peak memory and achieved GFLOP/s of models.

One protocol for every backend (:mod:`.core`): a :class:`BenchSource` turns MODEL arguments into subjects,
:func:`bench_models` times each with the same loop and :class:`BenchSettings`, and every row has the same schema
and writers (:mod:`.report`). :class:`ArtifactSource` runs ONNX files and TensorRT engines on the runtime's
backends; ``edgedenoise.torch_bench.TorchEagerSource`` runs PyTorch eager (the only part that needs torch).
Modules: :mod:`.core` (settings, subjects, the loop), :mod:`.timing` (timed runs, RSS sampling, the matmul
ceiling), :mod:`.report` (result schema, JSON, markdown), :mod:`.machine` (where it ran), :mod:`.artifacts`
(sizes, precisions, artifact files, MAC counts).

What is timed: the subject's call on one whole ``(N, C, H, W)`` float32 batch of seeded uniform noise in
[0, 1): for artifacts the backend's ``run`` (:meth:`~..backend.Backend.run`), for torch eager the module's
forward under ``torch.inference_mode``: the model itself, with no tiling and no dtype conversion. Models with a
noise-level input also get a ``(N, 1, H, W)`` map of σ = 25/255. The
:class:`~..denoiser.Denoiser`'s own overhead (HWC <-> NCHW, uint8, tiling) is what ``examples/bench_runtime.py``
measures. Each configuration (model x backend x size x batch) gets ``warmup`` untimed runs (ONNX Runtime
allocates its buffers and picks kernels on the first run of a shape), then up to ``iters`` runs, each timed
alone with :func:`time.perf_counter`. An optional time budget (``max_seconds``, :func:`time_runs`) cuts both
phases short for slow configurations (a 1080p frame through RED30 takes tens of seconds on a 2-core CPU), keeping
at least one warm-up and three timed runs; the row records how many of each really ran.

Derived figures, all from the median (p50) latency so that one slow run on a shared machine moves none of them:

* ``frames_per_s = batch * 1000 / p50_ms``; ``mp_per_s = frames_per_s * H * W / 1e6`` (input megapixels,
  all channels of a pixel count once);
* ``gflops = 2 * macs_per_pixel * H * W * batch / (p50_ms / 1000) / 1e9`` (one multiply-accumulate = two
  floating-point operations; for INT8 artifacts these are integer operations, "GOP/s", which may exceed the
  float32 ceiling). ``macs_per_pixel`` is read from the artifact's ONNX metadata
  (:data:`~..contract.MACS_PER_PIXEL_KEY`, written at export: the Conv MACs of the exported graph) or, for an
  artifact exported before that key existed, from a model card ``<base>.json`` beside it (key
  ``macs_per_pixel``, same architecture; the card counts the torch model before re-parameterisation, which
  differs by 0.04 % for the stride-2 RED30: 258,336 vs 258,448); otherwise it is unknown and ``gflops`` is None.
  ``<base>`` is a file name up to its first dot. Torch eager counts the MACs on the module itself.
* ``p50/p90/p99_ms``: :func:`numpy.percentile` (linear interpolation) of the timed samples. With 20 samples
  p99 is close to the slowest run; the JSON keeps every sample.

Peak memory (``peak_rss_mib``): the resident set size of the whole process (interpreter, libraries, sessions),
sampled every :data:`RSS_INTERVAL_S` seconds by a background thread from the warm-up's start to the last timed
run; read from ``/proc/self/statm`` (Linux) or ``psutil`` when installed (other systems). Sampling can miss a
spike shorter than the interval. ``rss_start_mib`` is the RSS just before the warm-up: in one process, memory
held by earlier configurations stays in the figure, so for per-configuration figures run one configuration per
process (``benchmarks/results.py`` does). Where neither source exists, the process-wide, monotonic
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used and ``memory_method`` says so. GPU memory is not measured.

The practical ceiling (:func:`matmul_ceiling`): the best GFLOP/s of a square float32 ``numpy.matmul`` (the
BLAS numpy was built with, all its threads) on the same machine.
"""

from .artifacts import (
    BENCH_PRECISIONS,
    Target,
    check_precision,
    check_sizes,
    macs_from_contract,
    padded_size,
    parse_precisions,
    parse_sizes,
    read_onnx_contract,
    resolve_targets,
    shipped_models,
)
from .core import (
    DEFAULT_SIZES,
    ArtifactSource,
    BenchSettings,
    BenchSource,
    BenchSubject,
    Opener,
    bench_artifact,
    bench_input,
    bench_models,
    time_subject,
)
from .machine import cpu_model, describe_machine, machine_info
from .report import JSON_FORMAT, BenchReport, BenchRow, MatmulCeiling, markdown_table, read_json
from .timing import MIN_TIMED, RSS_INTERVAL_S, RssSampler, Timing, current_rss_bytes, matmul_ceiling, time_runs

__all__ = [
    "BENCH_PRECISIONS",
    "DEFAULT_SIZES",
    "JSON_FORMAT",
    "MIN_TIMED",
    "RSS_INTERVAL_S",
    "ArtifactSource",
    "BenchReport",
    "BenchRow",
    "BenchSettings",
    "BenchSource",
    "BenchSubject",
    "MatmulCeiling",
    "Opener",
    "RssSampler",
    "Target",
    "Timing",
    "bench_artifact",
    "bench_input",
    "bench_models",
    "check_precision",
    "check_sizes",
    "cpu_model",
    "current_rss_bytes",
    "describe_machine",
    "macs_from_contract",
    "machine_info",
    "markdown_table",
    "matmul_ceiling",
    "padded_size",
    "parse_precisions",
    "parse_sizes",
    "read_json",
    "read_onnx_contract",
    "resolve_targets",
    "shipped_models",
    "time_runs",
    "time_subject",
]
