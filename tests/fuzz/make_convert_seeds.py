#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_safetensors and fuzz_gguf (tests/fuzz/corpus/<name>/).

The files are encoded here from the specs, independently of shardlm's writers (docs/conversion.md
names the specs), small, and cover what the readers accept: every safetensors dtype shardlm
reads (F32, BF16, F16), metadata, a scalar and an empty tensor; every GGUF metadata value type
(u8 .. f64, bool, string, arrays of strings and of numbers; the reader refuses
arrays of arrays), every tensor type shardlm reads
(f32, f16, bf16, q8_0), 1 to 4 dimensions, the default and a larger general.alignment, and a
file with no tensors. The unit test Convert.FuzzSeedsAreValidFiles (test_convert_formats)
checks that the readers accept every valid_* seed. Regression inputs (found by fuzzing) sit
beside them as regress_* and are not written here.

    tests/fuzz/make_convert_seeds.py [CORPUS_DIR]   # default: tests/fuzz/corpus next to this file
"""
import json
import os
import struct
import sys


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, data bytes)] in file order."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def f32s(values):
    return struct.pack("<%df" % len(values), *values)


def f16s(values):
    return struct.pack("<%de" % len(values), *values)


def bf16s(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)  # the upper half, truncated


# GGUF metadata value types (ggml's docs/gguf.md, gguf_metadata_value_type).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
          U64: "Q", I64: "q", F64: "d"}
# ggml tensor types shardlm reads, and bytes per element (q8_0: per 32-element block).
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, value):
    if vtype == STRING:
        return gguf_string(value)
    if vtype == ARRAY:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(gguf_value(etype, v) for v in items)
    return struct.pack("<" + SCALAR[vtype], value)


def q8_0(values):
    """quantize_row_q8_0_ref: per 32 values an f16 scale max|x| / 127 and 32 int8."""
    out = b""
    for b in range(0, len(values), 32):
        block = values[b:b + 32]
        d = max(abs(v) for v in block) / 127
        q = [round(v / d) if d else 0 for v in block]
        out += struct.pack("<e", d) + struct.pack("<32b", *q)
    return out


def gguf(metadata, tensors, alignment=32):
    """metadata: [(key, type, value)]; tensors: [(name, shape row-major, ggml type, data)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, vtype, value in metadata:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    offset, datas = 0, []
    for name, shape, ttype, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in reversed(shape))  # ne: fastest first
        out += struct.pack("<IQ", ttype, offset)
        data += b"\0" * (-len(data) % alignment)
        datas.append(data)
        offset += len(data)
    out += b"\0" * (-len(out) % alignment)
    return out + b"".join(datas)


def ramp(n, scale=0.37):
    return [scale * ((i * 7919) % 97 - 48) / 48 for i in range(n)]


def safetensors_seeds():
    return {
        "valid_every_dtype.safetensors": safetensors(
            [("a", "F32", [2, 3], f32s(ramp(6))), ("b", "BF16", [3, 4], bf16s(ramp(12))),
             ("c", "F16", [5], f16s(ramp(5))), ("scalar", "F32", [], f32s([1.5])),
             ("empty", "F16", [0, 4], b"")],
            {"format": "pt"}),
        "valid_no_metadata.safetensors": safetensors([("w", "F32", [1, 2, 2], f32s(ramp(4)))]),
    }


def gguf_seeds():
    every_value = [
        ("general.architecture", STRING, "llama"), ("general.alignment", U32, 64),
        ("u8", U8, 200), ("i8", I8, -5), ("u16", U16, 60000), ("i16", I16, -300),
        ("i32", I32, -7), ("f32", F32, 0.25), ("bool", BOOL, True), ("u64", U64, 1 << 40),
        ("i64", I64, -(1 << 40)), ("f64", F64, 3.5),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<pad>", "a", "bc"])),
        ("tokenizer.ggml.scores", ARRAY, (F32, [0.0, -1.0, -2.0])),
        ("tokenizer.ggml.token_type", ARRAY, (I32, [3, 1, 1])),
        ("u8s", ARRAY, (U8, [1, 2, 3])), ("bools", ARRAY, (BOOL, [True, False])),
    ]
    return {
        "valid_every_type.gguf": gguf(every_value, [
            ("norm", [5], GGML_F32, f32s(ramp(5))),
            ("h", [2, 8], GGML_F16, f16s(ramp(16))),
            ("b", [1, 2, 8], GGML_BF16, bf16s(ramp(16))),
            ("q", [1, 1, 2, 32], GGML_Q8_0, q8_0(ramp(64, 3.0))),
        ], alignment=64),
        "valid_default_alignment.gguf": gguf(
            [("general.architecture", STRING, "gpt2"), ("gpt2.block_count", U32, 1)],
            [("m", [2, 32], GGML_Q8_0, q8_0(ramp(64))), ("v", [3], GGML_F32, f32s(ramp(3)))]),
        "valid_no_tensors.gguf": gguf([("general.name", STRING, "x")], []),
    }


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for name, files in (("safetensors", safetensors_seeds()), ("gguf", gguf_seeds())):
        os.makedirs(os.path.join(corpus, name), exist_ok=True)
        for file, data in files.items():
            with open(os.path.join(corpus, name, file), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
