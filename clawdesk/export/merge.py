"""Fold a LoRA into the base weights and write one GGUF that llama.cpp serves on its own.

Why merge at all: with an adapter applied llama.cpp computes two extra small matmuls per
projection, ~20% slower decoding (docs/platform.md); a merged file costs nothing at run time
but is a full model on disk per version.

The route, chosen so that llama.cpp's own code does every quantisation:

1. read the base GGUF (``gguf.GGUFReader``; memory-mapped);
2. dequantise each 2-D weight to f32 (``gguf.quants.dequantize``) — these are exactly the values
   llama.cpp multiplies with — and add ``scaling · B @ A`` to the seven projections, B already
   row-permuted for q/k (layout.py), so the delta lands in the GGUF's row order;
3. write a GGUF with the base's metadata unchanged except ``general.file_type``; token
   embeddings (and an untied output matrix) are copied byte for byte — the LoRA never touches
   them, and re-quantising an already quantised table could only lose precision;
4. for a quantised target, hand that f32 file to ``llama_model_quantize`` (the bindings to
   llama.cpp's quantiser, with its per-tensor type choices for K-quants), keeping the
   embeddings' type so they are copied, not re-quantised.

**Never back to Q4_1** (nor the coarser Q4_0): a nightly LoRA's delta is small next to
Q4_1's step size, so rounding to the same grid the base came from snaps most weights back to
their old values — measured (bench/serve_formats.py): the trained answer's log-prob −58
instead of −0.95, against −65 for the untouched base. Q8_0, F16 and Q4_K_M keep it. (On
SmolLM2, whose rows of 576 are not a multiple of the K-quants' 256-wide blocks, llama.cpp's
Q4_K_M falls back to Q5_0 for most tensors; that finer grid still keeps the LoRA: −1.2.)
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..engine.llama import _quiet_stderr
from ..errors import TrainingError
from .atomic import atomic_output, fsync_path, scratch_file
from .layout import EMBEDDING_TENSORS, open_base, read_layout
from .peft_lora import read_peft_lora

# Output types and llama.cpp's ftype for the quantised ones (None: written directly).
QTYPES = {
    "F32": None,
    "F16": None,
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _check_qtype(qtype: str) -> str:
    qtype = qtype.upper()
    if qtype in QTYPES:
        return qtype
    if qtype.startswith(("Q4_0", "Q4_1")):
        raise TrainingError(f"Merging into {qtype} would round most of a small LoRA away (the base's own grid); "
                            f"use Q8_0 or Q4_K_M.")
    raise TrainingError(f"Unknown merge type {qtype}; choose one of {', '.join(QTYPES)}.")


def _write_float_gguf(reader, lora, layout, path: Path, as_f16: bool, progress: Progress | None) -> None:
    """Base + deltas as an F32 (or F16) GGUF at ``path`` (not atomic: callers wrap it)."""
    import gguf

    deltas = {pair.name: pair for pair in lora.pairs}
    float_dtype = np.float16 if as_f16 else np.float32
    file_type = gguf.LlamaFileType.MOSTLY_F16 if as_f16 else gguf.LlamaFileType.ALL_F32
    writer = gguf.GGUFWriter(path, layout.arch)
    for field in reader.fields.values():
        # GGUF.* are header fields, the writer adds general.architecture itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_uint32(field.name, int(file_type))
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)

    # Which tensors keep their bytes: 1-D norms (already f32) and the embeddings.
    def kept(t) -> bool:
        return len(t.shape) == 1 or t.name in EMBEDDING_TENSORS

    for t in reader.tensors:
        if kept(t):
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, raw_dtype=t.tensor_type)
        else:
            out_dim, in_dim = layout.shapes[t.name]
            writer.add_tensor_info(t.name, (out_dim, in_dim), np.dtype(float_dtype),
                                   out_dim * in_dim * np.dtype(float_dtype).itemsize)
    try:
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total = len(reader.tensors)
        for i, t in enumerate(reader.tensors):
            if kept(t):
                writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
            else:
                # [out, in] float32, rows in GGUF order (q/k interleaved), as llama.cpp sees them.
                w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(layout.shapes[t.name]).astype(np.float32)
                if t.name in deltas:
                    w += lora.delta(deltas[t.name])
                writer.write_tensor_data(w.astype(float_dtype, copy=False))
            if progress:
                progress("merge", i + 1, total)
    finally:
        writer.close()


def quantize_gguf(src: Path, dst: Path, qtype: str, keep_types: dict[str, int], n_threads: int = 0) -> None:
    """llama.cpp's own quantiser (``llama_model_quantize``) from an F32/F16 GGUF.

    ``keep_types`` maps "token_embd.weight"/"output.weight" to a ggml type to keep them in
    (already quantised in ``src``, so llama.cpp copies them instead of refusing to re-quantise)."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QTYPES[qtype])
    params.nthread = n_threads or (os.cpu_count() or 2)
    if "token_embd.weight" in keep_types:
        params.token_embedding_type = keep_types["token_embd.weight"]
    if "output.weight" in keep_types:
        params.output_tensor_type = keep_types["output.weight"]
    with _quiet_stderr():  # the quantiser logs every tensor on fd 2
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise TrainingError(f"llama.cpp could not quantise the merged model to {qtype} (code {rc}); "
                            f"serve the adapter instead (settings: serve = 'adapter').")


def merge_to_gguf(base_gguf: str | Path, peft_dir: str | Path, out_path: str | Path, qtype: str = "Q8_0",
                  progress: Progress | None = None, n_threads: int = 0) -> Path:
    """Write base + LoRA as one GGUF of type ``qtype`` at ``out_path`` (atomically) and return it."""
    import gguf

    qtype = _check_qtype(qtype)
    reader = open_base(base_gguf)
    layout = read_layout(reader)
    lora = read_peft_lora(peft_dir, layout)
    out_path = Path(out_path)
    if QTYPES[qtype] is None:
        with atomic_output(out_path) as tmp:
            _write_float_gguf(reader, lora, layout, tmp, as_f16=qtype == "F16", progress=progress)
        return out_path
    keep_types = {t.name: int(t.tensor_type) for t in reader.tensors
                  if t.name in EMBEDDING_TENSORS and t.tensor_type not in (gguf.GGMLQuantizationType.F32,
                                                                           gguf.GGMLQuantizationType.F16)}
    with scratch_file(out_path, ".f32.part") as f32_path, atomic_output(out_path) as tmp:
        _write_float_gguf(reader, lora, layout, f32_path, as_f16=False, progress=progress)
        del reader  # release the memory map before the quantiser reads another big file
        if progress:
            progress("quantize", 0, 1)
        quantize_gguf(f32_path, tmp, qtype, keep_types, n_threads)
        fsync_path(tmp)
        if progress:
            progress("quantize", 1, 1)
    return out_path
