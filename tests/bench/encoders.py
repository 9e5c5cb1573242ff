"""Encoder throughput by batch size, and ingest efficiency for each profile.

Throughput: every encoder of the starter, clip and clap profiles on each kind it
accepts, at batch sizes 1, 4, 16, 64 on the CPU (up to 256 on a GPU). The batch size
asked for is the one run: the encoder's own batch attributes (`batch_size`, and the
per-kind `batch_sizes` the Hugging Face encoders split by) are set to it, and checked
after the run (out-of-memory back-off would shrink them). Each measurement encodes one
warm-up batch, then at least two timed batches, more while a small time budget lasts.
A batch size whose two timed batches plus warm-up would, by the rate at the smaller
size, take longer than a cap is skipped (on a CPU the rate has flattened out by then).

The CLIP, SigLIP and CLAP checkpoints cannot be downloaded here, so each is built from
its transformers config at the real architecture's size (CLIP ViT-B/32, SigLIP base
patch16-224, CLAP HTSAT-unfused) with random weights, saved with a stand-in tokenizer
(tests/hf_tiny.py's, trained with a larger vocabulary) and the real image processor /
feature extractor settings, and loaded by the encoders exactly as a downloaded one
(models.resolve -> Auto classes). Same shapes, same FLOPs: the throughput is the real
models'; the vectors mean nothing.

Ingest efficiency, as the ingest benchmark measures it for starter: `index()` of
generated files into a fresh library with the (loaded) encoders, against the encoder
alone on the same payloads decoded beforehand, handed over in the chunks index() hands
it. clip: ViT-B/32 on pictures; clap: 6-second 44.1 kHz wav files, cut by the decoder
into 3-second windows at 48 kHz (items are windows); starter: its image encoder, for
comparison in the same table. Target: ratio >= 0.85 (reported, not gated).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from mmstudio.core import media
from mmstudio.core.samples import PATTERNS, SOUNDS, TEXTS, draw, tone
from mmstudio.core.segments import Audio
from mmstudio.encoders.base import Encoder
from mmstudio.encoders.profiles import audio_rate
from tests import hf_tiny
from tests.bench import corpus
from tests.bench.ingest import (
    NOISY_SHARE,
    TARGET_RATIO,
    IngestRun,
    _loadavg,
    _seconds,
    _Stopwatch,
    default_workers,
    time_index,
)
from tests.bench.report import BenchResult, Clock, Table, Target, Timing

log = logging.getLogger(__name__)

NAME = "encoders"
CPU_BATCHES, CPU_BATCHES_QUICK = (1, 4, 16, 64), (1, 16)
GPU_BATCHES, GPU_BATCHES_QUICK = (1, 4, 16, 64, 256), (1, 64)
MIN_BATCHES = 2  # timed batches after the warm-up batch, at the least
BUDGET_S, BUDGET_S_QUICK = 4.0, 1.5  # a measurement adds batches while this lasts
CAP_S, CAP_S_QUICK = 60.0, 20.0  # a measurement expected to take longer is skipped
POOL = 64  # distinct payloads per kind; bigger batches cycle through them
TEXT_CHARS = 200
IMAGE_SIZE = 256
STARTER_RATE = 16000
CLAP_FILE_SECONDS, CLAP_FILE_RATE = 6.0, 44100
REPEATS = 2  # ingest efficiency: each measurement runs this often, the better run counts
#: the stand-in tokenizers: hf_tiny's builders with more words and a larger vocabulary,
#: so that English splits into about as many tokens as with the real ones (whose
#: vocabularies are 32-50k); every id stays below the real models' vocab_size
TOKENIZER_WORDS, TOKENIZER_VOCAB = 30000, 16000


# -- checkpoints at real size ----------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    label: str  # "CLIP ViT-B/32"
    profile: str  # the profile that loads it
    folder: Path  # named like the real checkpoint, so the space is too
    params_m: float
    sizes: dict[str, Any]
    build_s: float


@contextmanager
def _stand_in_vocabulary() -> Iterator[None]:
    saved = hf_tiny._WORDS, hf_tiny._VOCAB
    hf_tiny._WORDS, hf_tiny._VOCAB = TOKENIZER_WORDS, TOKENIZER_VOCAB
    hf_tiny.corpus_words.cache_clear()
    try:
        yield
    finally:
        hf_tiny._WORDS, hf_tiny._VOCAB = saved
        hf_tiny.corpus_words.cache_clear()


def _tokenizer(make_tiny: Callable[[Path], Path], folder: Path) -> Any:
    """hf_tiny's tokenizer for that family, saved into `folder` (its tiny model is not)."""
    from transformers import AutoTokenizer

    with _stand_in_vocabulary():
        scratch = make_tiny(folder.parent / f"{folder.name}-tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(scratch)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _special_ids(tokenizer: Any) -> dict[str, int | None]:
    return dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)


def _save(model: Any, folder: Path) -> float:
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.eval().save_pretrained(folder, safe_serialization=True)
    return params


def _build_dual(folder: Path, family: str, make_tiny: Any, label: str,
                projection: bool) -> Checkpoint:
    """A CLIP-family checkpoint at its config's default (real) size, random weights."""
    import torch
    import transformers

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(make_tiny, folder)
    config = getattr(transformers, f"{family}Config")(text_config=_special_ids(tokenizer))
    torch.manual_seed(0)
    params = _save(getattr(transformers, f"{family}Model")(config), folder)
    # defaults: 224 px, bicubic; CLIP's OpenAI mean/std, SigLIP's 0.5
    getattr(transformers, f"{family}ImageProcessorPil")().save_pretrained(folder)
    v, t = config.vision_config, config.text_config
    sizes = {"vision": f"{v.image_size}px/{v.patch_size} {v.hidden_size}x{v.num_hidden_layers}",
             "text": f"{t.hidden_size}x{t.num_hidden_layers} vocab {t.vocab_size}"}
    if projection:
        sizes["projection"] = config.projection_dim
    return Checkpoint(label, "clip", folder, params, sizes, time.perf_counter() - t0)


def build_clip(folder: Path) -> Checkpoint:
    """openai/clip-vit-base-patch32's shape: CLIPConfig's defaults."""
    return _build_dual(folder, "CLIP", hf_tiny.make_tiny_clip, "CLIP ViT-B/32", projection=True)


def build_siglip(folder: Path) -> Checkpoint:
    """google/siglip-base-patch16-224's shape: SiglipConfig's defaults."""
    return _build_dual(folder, "Siglip", hf_tiny.make_tiny_siglip, "SigLIP base/16-224",
                       projection=False)


def build_clap(folder: Path) -> Checkpoint:
    """laion/clap-htsat-unfused's shape: ClapConfig's and ClapFeatureExtractor's defaults."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(hf_tiny.make_tiny_clap, folder)
    config = ClapConfig(text_config=_special_ids(tokenizer))
    torch.manual_seed(0)
    params = _save(ClapModel(config), folder)
    features = ClapFeatureExtractor()  # 48 kHz, 64 mel bands, hop 480, 10 s, repeatpad
    features.save_pretrained(folder)
    a, t = config.audio_config, config.text_config
    sizes = {"audio": f"HTSAT spec {a.spec_size} depths {list(a.depths)} embed "
                      f"{a.patch_embeds_hidden_size} fusion {a.enable_fusion}",
             "text": f"RoBERTa {t.hidden_size}x{t.num_hidden_layers} vocab {t.vocab_size}",
             "projection": config.projection_dim,
             "features": f"{features.sampling_rate} Hz, {features.feature_size} mel, "
                         f"{features.max_length_s} s"}
    return Checkpoint("CLAP HTSAT-unfused", "clap", folder, params, sizes,
                      time.perf_counter() - t0)


# -- payloads ----------------------------------------------------------------------------


def texts(count: int) -> list[str]:
    """~200-character passages of the sample texts, each a different mix."""
    sentences = [s.strip() for t in TEXTS.values() for s in t.replace("\n\n", " ").split(". ")]
    sentences = [s if s.endswith(".") else s + "." for s in sentences if s]
    out = []
    for n in range(count):
        parts, i = [], n * 5
        while len(" ".join(parts)) < TEXT_CHARS - 30:
            parts.append(sentences[i % len(sentences)])
            i += 1
        text = " ".join(parts)
        out.append(text if len(text) <= TEXT_CHARS + 20 else
                   text[:TEXT_CHARS + 20].rsplit(" ", 1)[0])
    return out


def images(count: int) -> list[Any]:
    return [draw(PATTERNS[n % len(PATTERNS)], IMAGE_SIZE, seed=n) for n in range(count)]


def sounds(count: int, rate: int, seconds: float) -> list[Audio]:
    return [Audio(tone(SOUNDS[n % len(SOUNDS)], seconds, rate, seed=n), rate)
            for n in range(count)]


def write_wavs(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        kind = SOUNDS[n % len(SOUNDS)]
        path = folder / f"sound-{n:05d}-{kind}.wav"
        samples = tone(kind, CLAP_FILE_SECONDS, CLAP_FILE_RATE, seed=n)
        sf.write(path, samples, CLAP_FILE_RATE)
        paths.append(path)
    return paths


# -- throughput ------------------------------------------------------------------------


@dataclass
class Throughput:
    profile: str
    encoder: str
    kind: str
    batch: int
    items: int = 0  # timed items (the warm-up batch not counted)
    seconds: float = 0.0
    cpu_s: float = 0.0
    others_cpu_s: float | None = None
    prep_s: float | None = None  # in the image processor / feature extractor
    ran_batch: int | None = None  # the batch size the encoder still had afterwards
    skipped: str | None = None

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("nan")


def _batch_attrs(encoder: Encoder) -> tuple[int | None, dict[str, int]]:
    return getattr(encoder, "batch_size", None), dict(getattr(encoder, "batch_sizes", {}))


def _set_batch(encoder: Encoder, kind: str, size: int) -> None:
    if hasattr(encoder, "batch_size"):
        encoder.batch_size = size
    sizes = getattr(encoder, "batch_sizes", None)
    if sizes is not None:
        sizes[kind] = size


def _restore_batch(encoder: Encoder, saved: tuple[int | None, dict[str, int]]) -> None:
    size, sizes = saved
    if size is not None:
        encoder.batch_size = size
    if hasattr(encoder, "batch_sizes"):
        encoder.batch_sizes.clear()
        encoder.batch_sizes.update(sizes)


def _ran_batch(encoder: Encoder, kind: str) -> int | None:
    sizes = getattr(encoder, "batch_sizes", None)
    if sizes is not None and kind in sizes:
        return int(sizes[kind])
    size = getattr(encoder, "batch_size", None)
    return None if size is None else int(size)


def _prep_hook(encoder: Encoder, kind: str) -> tuple[object, str] | None:
    """Where an encoder turns payloads into tensors: timed apart from the model."""
    if kind == "image" and hasattr(encoder, "image_inputs"):
        return encoder, "image_inputs"
    if kind == "audio" and hasattr(encoder, "audio_inputs"):
        return encoder, "audio_inputs"
    if kind == "image" and encoder.name == "starter-image":
        from mmstudio.encoders import efficientnet_lite  # encode() imports preprocess per call

        return efficientnet_lite, "preprocess"
    return None


@contextmanager
def _timed(hook: tuple[object, str] | None, watch: _Stopwatch) -> Iterator[None]:
    if hook is None:
        yield
        return
    owner, attr = hook
    own = attr in vars(owner)
    original = getattr(owner, attr)
    setattr(owner, attr, watch.wrap("prep", original))
    try:
        yield
    finally:
        if own:
            setattr(owner, attr, original)
        else:
            delattr(owner, attr)


def measure(profile: str, encoder: Encoder, kind: str, pool: Sequence[Any], batch: int,
            budget_s: float) -> Throughput:
    """Items/s of `encoder.encode(kind, ...)` at `batch`: warm-up batch, then timed ones."""
    def nth(i: int) -> list[Any]:
        return [pool[(i * batch + j) % len(pool)] for j in range(batch)]

    _set_batch(encoder, kind, batch)
    encoder.encode(kind, nth(0))
    watch = _Stopwatch()
    result = Throughput(profile, encoder.name, kind, batch)
    with _timed(_prep_hook(encoder, kind), watch), Clock() as clock:
        t0, n = time.perf_counter(), 0
        while n < MIN_BATCHES or time.perf_counter() - t0 < budget_s:
            encoder.encode(kind, nth(n + 1))
            n += 1
    result.items, result.seconds = n * batch, clock.timing.wall
    result.cpu_s, result.others_cpu_s = clock.timing.cpu, clock.timing.others_cpu
    result.prep_s = watch.seconds.get("prep") if _prep_hook(encoder, kind) else None
    result.ran_batch = _ran_batch(encoder, kind)
    return result


def sweep(profile: str, encoder: Encoder, kind: str, pool: Sequence[Any],
          batches: Sequence[int], budget_s: float, cap_s: float) -> list[Throughput]:
    saved = _batch_attrs(encoder)
    rows: list[Throughput] = []
    per_item: float | None = None
    try:
        for batch in batches:
            if per_item is not None:
                expected = (1 + MIN_BATCHES) * batch * per_item
                if expected > cap_s:
                    rows.append(Throughput(profile, encoder.name, kind, batch,
                                           skipped=f"~{expected:.0f} s expected > cap {cap_s:.0f} s"))
                    continue
            row = measure(profile, encoder, kind, pool, batch, budget_s)
            log.info("%s %s batch %d: %.2f items/s", encoder.name, kind, batch, row.rate)
            rows.append(row)
            per_item = row.seconds / row.items
    finally:
        _restore_batch(encoder, saved)
    return rows


# -- ingest efficiency -----------------------------------------------------------------


@dataclass
class Efficiency:
    profile: str
    encoder: str
    kind: str
    files: int
    items: int  # payloads encoded: pictures, or audio windows
    per_call: int  # items index() hands to one encode() call
    per_pass: int  # items per forward pass inside the encoder
    encoder_only: list[Timing] = field(default_factory=list)
    index_runs: list[IngestRun] = field(default_factory=list)

    @property
    def encoder_rate(self) -> float:
        return self.items / min(t.wall for t in self.encoder_only)

    @property
    def best(self) -> IngestRun:
        return min(self.index_runs, key=lambda r: r.seconds)

    @property
    def index_rate(self) -> float:
        return self.best.segments / self.best.seconds

    @property
    def ratio(self) -> float:
        return self.index_rate / self.encoder_rate


def efficiency(profile: str, encoders: Sequence[Encoder], kind: str, folder: Path,
               payloads: Sequence[Any], workdir: Path, repeats: int) -> Efficiency:
    """index() of `folder` vs `encode(kind, ...)` on its payloads decoded beforehand."""
    encoder = next(e for e in encoders if kind in e.routes)
    per_call = int(getattr(encoder, "batch_size", 32))  # as mmstudio.core.ingest batches
    per_pass = min(per_call, _ran_batch(encoder, kind) or per_call)
    files = sum(1 for p in folder.iterdir() if p.is_file())
    result = Efficiency(profile, encoder.name, kind, files, len(payloads), per_call, per_pass)
    encoder.encode(kind, list(payloads[:per_call]))  # warm-up at this batch size
    for r in range(repeats):  # interleaved, so load from elsewhere hits both alike
        with Clock() as clock:
            for lo in range(0, len(payloads), per_call):
                encoder.encode(kind, list(payloads[lo:lo + per_call]))
        result.encoder_only.append(clock.timing)
        run = time_index(encoders, folder, workdir / f"library-{profile}-{r}", workers=None)
        result.index_runs.append(run)
        log.info("%s round %d: encoder only %.2f %s/s, index() %.2f", profile, r + 1,
                 len(payloads) / clock.timing.wall, kind, run.segments / run.seconds)
    return result


# -- the benchmark ---------------------------------------------------------------------


def _n(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def run(quick: bool, workdir: Path, device: str = "cpu") -> BenchResult:
    import torch
    from transformers.utils import logging as hf_logging

    from mmstudio.encoders.device import inference_dtype, pick_device
    from mmstudio.encoders.hf_clap import ClapEncoder
    from mmstudio.encoders.hf_clip import ClipEncoder
    from mmstudio.encoders.starter import starter_profile

    started = time.perf_counter()
    hf_logging.disable_progress_bar()
    device = pick_device(device)
    on_cpu = device == "cpu"
    batches = (CPU_BATCHES_QUICK if quick else CPU_BATCHES) if on_cpu else (
        GPU_BATCHES_QUICK if quick else GPU_BATCHES)
    budget_s = BUDGET_S_QUICK if quick else BUDGET_S
    cap_s = CAP_S_QUICK if quick else CAP_S
    if on_cpu:
        n_images, n_wavs = (40, 15) if quick else (120, 40)
    else:
        n_images, n_wavs = (120, 40) if quick else (500, 120)
    repeats = 1 if quick else REPEATS
    pool = max(POOL, max(batches)) if not on_cpu else POOL

    throughput: list[Throughput] = []
    effs: list[Efficiency] = []
    checkpoints: list[Checkpoint] = []
    loads: dict[str, float] = {}
    dtypes: dict[str, str] = {}
    tokens: dict[str, float] = {}
    text_pool = texts(pool)
    image_pool = images(pool)
    ckpt_root = workdir / "checkpoints"

    def sweep_all(profile: str, encoder: Encoder, payloads: dict[str, Sequence[Any]]) -> None:
        for kind in encoder.routes:
            throughput.extend(sweep(profile, encoder, kind, payloads[kind], batches,
                                    budget_s, cap_s))

    def loaded(encoder: Any) -> Any:
        t0 = time.perf_counter()
        encoder.load()
        loads[encoder.name] = time.perf_counter() - t0
        dtypes[encoder.name] = str(encoder.model.dtype).removeprefix("torch.")
        windows = [len(w) for t in text_pool for w in encoder.text_windows(t)]
        tokens[encoder.name] = sum(windows) / len(text_pool)
        tokens[f"{encoder.name} windows"] = len(windows) / len(text_pool)
        return encoder

    # starter
    t0 = time.perf_counter()
    starter = starter_profile(device=device)
    for enc, probe in zip(starter, (text_pool[:1], image_pool[:1],
                                    sounds(1, STARTER_RATE, 3.0)), strict=True):
        enc.encode(next(iter(enc.routes)), probe)  # weights in, class embeddings made
        dtypes[enc.name] = "float32" if enc.name != "starter-audio" else "float32 (numpy)"
    loads["starter"] = time.perf_counter() - t0
    starter_payloads = {"text": text_pool, "image": image_pool,
                        "audio": sounds(pool, STARTER_RATE, 3.0)}
    for enc in starter:
        sweep_all("starter", enc, starter_payloads)
    image_folder = workdir / "images"
    image_paths = corpus.images(image_folder, n_images)
    decoded = [media.load_image(p) for p in image_paths]  # what ingest decodes
    effs.append(efficiency("starter", starter, "image", image_folder, decoded, workdir,
                           repeats))

    # clip: CLIP ViT-B/32 (also the ingest efficiency), then SigLIP base
    checkpoints.append(build_clip(ckpt_root / "clip-vit-base-patch32"))
    clip = loaded(ClipEncoder(str(checkpoints[-1].folder), device=device))
    sweep_all("clip", clip, {"text": text_pool, "image": image_pool})
    effs.append(efficiency("clip", [clip], "image", image_folder, decoded, workdir, repeats))
    del clip, decoded

    checkpoints.append(build_siglip(ckpt_root / "siglip-base-patch16-224"))
    siglip = loaded(ClipEncoder(str(checkpoints[-1].folder), device=device))
    sweep_all("clip", siglip, {"text": text_pool, "image": image_pool})
    del siglip

    # clap
    checkpoints.append(build_clap(ckpt_root / "clap-htsat-unfused"))
    clap = loaded(ClapEncoder(str(checkpoints[-1].folder), device=device))
    options = media.DecodeOptions(audio_rate=audio_rate([clap]))
    window_s = options.audio_window
    sweep_all("clap", clap, {"audio": sounds(pool, clap.sample_rate, window_s),
                             "text": text_pool})
    wav_folder = workdir / "sounds"
    windows = [seg.data for p in write_wavs(wav_folder, n_wavs) for seg in media.decode(p, options)]
    effs.append(efficiency("clap", [clap], "audio", wav_folder, windows, workdir, repeats))
    del clap, windows

    # -- tables
    table = Table(["profile", "encoder", "kind", "batch", "items/s", "ms/item", "items timed",
                   "prep %"])
    for t in throughput:
        if t.skipped:
            table.add(t.profile, t.encoder, t.kind, t.batch, "skipped", "-", "-", "-")
            continue
        prep = "-" if t.prep_s is None else f"{100 * t.prep_s / t.seconds:.0f}"
        table.add(t.profile, t.encoder, t.kind, t.batch, _n(t.rate), _n(1000 / t.rate),
                  t.items, prep)
    ingest_table = Table(["profile", "encoder", "kind", "files", "items", "batch call/pass",
                          *(f"enc run {r + 1} s" for r in range(repeats)),
                          *(f"index run {r + 1} s" for r in range(repeats)),
                          "encoder items/s", "index items/s", "ratio", "in encode s",
                          "in upsert s", "setup s", "others cpu s"])
    for e in effs:
        best = e.best
        ingest_table.add(
            e.profile, e.encoder, e.kind, e.files, e.items, f"{e.per_call}/{e.per_pass}",
            *(f"{t.wall:.1f}" for t in e.encoder_only), *(f"{r.seconds:.1f}" for r in e.index_runs),
            _n(e.encoder_rate), _n(e.index_rate), f"{e.ratio:.2f}",
            f"{best.inside.get(f'encode:{e.encoder}', 0.0):.1f}",
            f"{best.inside.get('store.upsert', 0.0):.2f}", f"{best.setup_s:.2f}",
            _seconds(best.others_cpu_s),
        )
    units = {"image": "images/s", "audio": "windows/s"}
    targets = [Target(f"{e.profile} ({e.encoder}): index() / encoder-only {units[e.kind]}",
                      e.ratio, ">=", TARGET_RATIO) for e in effs]

    # -- notes
    notes = [
        f"device {device}, torch threads {torch.get_num_threads()}; weights in "
        + ", ".join(f"{k} {v}" for k, v in dtypes.items())
        + f" (the encoders' own choice: {inference_dtype(device)} for the Hugging Face ones)",
        "CLIP / SigLIP / CLAP: random weights at real size; throughput only "
        "(same architecture and FLOPs as the released checkpoints, loaded through "
        "models.resolve -> Auto classes): "
        + "; ".join(f"{c.label} = {c.folder.name}: {c.params_m:.1f} M params, "
                    + ", ".join(f"{k} {v}" for k, v in c.sizes.items())
                    + f" (built in {c.build_s:.0f} s)" for c in checkpoints),
        "payloads: text ~200-character passages (stand-in BPE tokenizers, vocabulary "
        f"{TOKENIZER_VOCAB}, a little finer than the real ones: tokens per text incl. "
        "specials " + ", ".join(f"{k} {tokens[k]:.0f} in {tokens[f'{k} windows']:.1f} windows"
                                for k in tokens if not k.endswith(" windows"))
        + f"); images {IMAGE_SIZE}x{IMAGE_SIZE} RGB (samples.draw); audio "
        f"{window_s:g} s windows (samples.tone) at {STARTER_RATE} Hz for starter, "
        "48000 Hz for CLAP (which repeat-pads each to its 10 s input)",
        f"throughput: one warm-up batch, then >= {MIN_BATCHES} timed batches, more while "
        f"{budget_s:g} s last; 'items timed' counts them; a batch size expected (by the "
        f"rate at the last smaller size) to take > {cap_s:g} s in all is skipped; "
        "'prep %': share of the time in the image processor / CLAP feature extractor "
        "(starter image: its resize+normalise), '-' where there is none to split off",
        "model load (excluded): " + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()),
        f"ingest efficiency: index(workers=None -> {default_workers()} decode threads) into "
        "a fresh library with the loaded encoders, vs encode() on the same payloads decoded "
        "beforehand, in the chunks index() hands over ('batch call/pass': items per "
        "encode() call / per forward pass); items are pictures, or for clap the decoder's "
        f"{options.audio_window:g} s windows every {options.audio_hop:g} s at "
        f"{options.audio_rate} Hz of {CLAP_FILE_SECONDS:g} s {CLAP_FILE_RATE} Hz wav files; "
        f"{repeats} run(s) each, the better counts; starter repeated here for comparison "
        "(its own benchmark: ingest)",
        f"load average at the end: {_loadavg()}",
    ]
    if on_cpu:
        notes.append("GPU numbers (fp16/bf16 vs fp32, batch up to 256) could not be measured: "
                     "no GPU was lent to this task; `python -m tests.bench --only encoders "
                     "--device cuda` gives them where one exists")
    shrunk = [t for t in throughput if not t.skipped and t.ran_batch not in (None, t.batch)]
    if shrunk:
        notes.append("out-of-memory back-off shrank the batch: " + ", ".join(
            f"{t.encoder} {t.kind} {t.batch} -> {t.ran_batch}" for t in shrunk))
    noisy = [f"{t.encoder} {t.kind} b{t.batch}" for t in throughput
             if t.others_cpu_s is not None and t.others_cpu_s > NOISY_SHARE * t.seconds]
    noisy += [f"{e.profile} index()" for e in effs
              if (o := e.best.others_cpu_s) is not None and o > NOISY_SHARE * e.best.seconds]
    if noisy:
        notes.append("other processes were busy during: " + ", ".join(noisy))
    bad = [e.profile for e in effs for r in e.index_runs if r.errors or r.files != e.files]
    if bad:
        notes.append(f"index() did not index every file cleanly for: {', '.join(bad)}")

    return BenchResult(
        name=NAME,
        title="encoder throughput by batch size; ingest efficiency per profile",
        params={"device": device, "batches": "/".join(map(str, batches)), "images": n_images,
                "wavs": n_wavs, "repeats": repeats},
        table=table,
        extra_tables={"ingest": ingest_table},
        targets=targets,
        notes=notes,
        data={
            "device": device,
            "batches": list(batches),
            "checkpoints": [asdict(c) for c in checkpoints],
            "model_load_s": loads,
            "dtypes": dtypes,
            "text_tokens": tokens,
            "throughput": [asdict(t) | {"rate": None if t.skipped else t.rate}
                           for t in throughput],
            "ingest": [
                {"profile": e.profile, "encoder": e.encoder, "kind": e.kind, "files": e.files,
                 "items": e.items, "per_call": e.per_call, "per_pass": e.per_pass,
                 "encoder_only": [asdict(t) for t in e.encoder_only],
                 "index_runs": [asdict(r) | {"items_per_s": r.segments / r.seconds}
                                for r in e.index_runs],
                 "encoder_items_per_s": e.encoder_rate, "index_items_per_s": e.index_rate,
                 "ratio": e.ratio}
                for e in effs
            ],
            "noisy": noisy,
        },
        seconds=time.perf_counter() - started,
    )


