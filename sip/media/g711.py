"""G.711 u-law (PCMU) and A-law (PCMA) with numpy lookup tables, bit-exact with the ITU/Sun reference code.

Encode tables cover all 65536 16-bit samples; decode tables all 256 code words; transcoding tables are 256-byte
`bytes` for `bytes.translate` (the relay's PCMU<->PCMA path costs one C call per packet).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Codec = Literal["PCMU", "PCMA"]
SAMPLE_RATE = 8000

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_encode_table() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + (0x84 >> 2)
    seg = np.searchsorted(_SEG_UEND, magnitude, side="left")
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0xF))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_AEND, magnitude, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> shift) & 0xF))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


ENCODE_TABLES: dict[str, np.ndarray] = {"PCMU": _ulaw_encode_table(), "PCMA": _alaw_encode_table()}
DECODE_TABLES: dict[str, np.ndarray] = {"PCMU": _ulaw_decode_table(), "PCMA": _alaw_decode_table()}
for _table in (*ENCODE_TABLES.values(), *DECODE_TABLES.values()):
    _table.setflags(write=False)

ULAW_TO_ALAW: bytes = ENCODE_TABLES["PCMA"][DECODE_TABLES["PCMU"].astype(np.int32) + 32768].tobytes()
ALAW_TO_ULAW: bytes = ENCODE_TABLES["PCMU"][DECODE_TABLES["PCMA"].astype(np.int32) + 32768].tobytes()
SILENCE: dict[str, int] = {"PCMU": 0xFF, "PCMA": 0xD5}


def check_codec(codec: str) -> Codec:
    if codec not in ENCODE_TABLES:
        raise ValueError(f"unsupported codec {codec!r}; supported: PCMU, PCMA")
    return codec  # type: ignore[return-value]


def encode(pcm: np.ndarray, codec: str) -> bytes:
    """16-bit signed linear samples -> G.711 bytes."""
    table = ENCODE_TABLES[check_codec(codec)]
    return table[np.asarray(pcm, dtype=np.int16).astype(np.int32) + 32768].tobytes()


def decode(payload: bytes, codec: str) -> np.ndarray:
    """G.711 bytes -> 16-bit signed linear samples (int16 array)."""
    return DECODE_TABLES[check_codec(codec)][np.frombuffer(payload, dtype=np.uint8)]


def transcode_table(source: str, target: str) -> bytes | None:
    """`bytes.translate` table from one codec to the other, or None when no transcoding is needed."""
    if check_codec(source) == check_codec(target):
        return None
    return ULAW_TO_ALAW if source == "PCMU" else ALAW_TO_ULAW
