"""Our hold music, calls/static/telephony/hold-music.wav: `python -m calls.telephony.hold_music`
writes it.

Synthesized here, from sine tones, so it is ours to use with no licence to track: ten seconds of a
slow arpeggio over four chords (C, A minor, F, G), each note with a soft attack and decay, in the
format phone lines carry (8 kHz, 16-bit, mono). The same bytes every time it is run.
"""

import math
import struct
import sys
import wave
from pathlib import Path

RATE = 8000
SECONDS = 10
OUTPUT = Path(__file__).resolve().parent.parent / "static" / "telephony" / "hold-music.wav"
# Each chord's notes (Hz), played low to high and back, one chord per 2.5 s.
CHORDS = [
    (261.63, 329.63, 392.00, 523.25),  # C
    (220.00, 261.63, 329.63, 440.00),  # A minor
    (174.61, 220.00, 261.63, 349.23),  # F
    (196.00, 246.94, 293.66, 392.00),  # G
]
NOTE_SECONDS = 0.3125  # eight notes a chord
VOLUME = 0.25


def _note(frequency: float, start: int, samples: list[float]) -> None:
    length = int(NOTE_SECONDS * 2 * RATE)  # each note rings on under the next
    for i in range(length):
        if start + i >= len(samples):
            return
        t = i / RATE
        envelope = min(1.0, t / 0.02) * math.exp(-3.0 * t)
        tone = math.sin(2 * math.pi * frequency * t) + 0.2 * math.sin(4 * math.pi * frequency * t)
        samples[start + i] += VOLUME * envelope * tone


def hold_music_samples() -> list[int]:
    samples = [0.0] * (RATE * SECONDS)
    step = int(NOTE_SECONDS * RATE)
    position = 0
    for chord in CHORDS:
        for frequency in (*chord, *reversed(chord)):
            _note(frequency, position, samples)
            position += step
    fade = RATE // 4  # no click where the carrier starts it again
    for i in range(fade):
        samples[-1 - i] *= i / fade
    peak = max(abs(value) for value in samples) or 1.0
    return [round(value / peak * 0.8 * 32767) for value in samples]


def write(path: Path = OUTPUT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{RATE * SECONDS}h", *hold_music_samples()))


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
