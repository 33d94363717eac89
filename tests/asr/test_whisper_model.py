"""seqspeech.asr.whisper against openai-whisper's reference model on a tiny random configuration."""

from __future__ import annotations

import pytest
import torch

from seqspeech.asr.whisper import DecoderState, Whisper, WhisperDims, quantize_dynamic_int8
from seqspeech.errors import ConfigError

whisper_model = pytest.importorskip("whisper.model")
from whisper_reference import ATOL, TINY, random_inputs, random_openai_whisper  # noqa: E402


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    return random_openai_whisper()


@pytest.fixture(scope="module")
def model(reference: torch.nn.Module) -> Whisper:
    ours = Whisper(WhisperDims(**TINY)).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return random_inputs(3, 12)


def test_state_dict_names_are_openai_names(reference: torch.nn.Module) -> None:
    ours = Whisper(WhisperDims(**TINY))
    assert set(ours.state_dict()) == set(reference.state_dict())
    assert "decoder.blocks.0.attn.key.bias" not in ours.state_dict()
    assert "alignment_heads" not in ours.state_dict()


@torch.no_grad()
def test_logits_match_openai(reference, model, inputs) -> None:
    mel, tokens = inputs
    expected = reference(mel, tokens)
    features = model.embed_audio(mel)
    torch.testing.assert_close(features, reference.embed_audio(mel), atol=ATOL, rtol=0)
    torch.testing.assert_close(model.logits(tokens, features), expected, atol=ATOL, rtol=0)
    got = model(mel, tokens)
    assert got.dtype == torch.float32 and got.shape == (3, 12, TINY["n_vocab"])
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@torch.no_grad()
def test_incremental_decoding_equals_full_sequence(model, inputs) -> None:
    mel, tokens = inputs
    features = model.embed_audio(mel)
    full = model.logits(tokens, features)
    state = model.decoder.init_state(features)
    pieces = []
    logits, state = model.decoder(tokens[:, :3], state)  # prompt chunk, causal
    pieces.append(logits)
    for i in range(3, 8):  # 1-token steps
        logits, state = model.decoder(tokens[:, i : i + 1], state)
        pieces.append(logits)
    logits, state = model.decoder(tokens[:, 8:], state)  # a chunk after a cached prefix
    pieces.append(logits)
    assert state.offset == tokens.shape[1]
    assert state.self_k[0].shape == (3, TINY["n_text_head"], 12, TINY["n_text_state"] // TINY["n_text_head"])
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=0)


@torch.no_grad()
def test_state_is_not_mutated_so_it_can_branch(model, inputs) -> None:
    mel, tokens = inputs
    state = model.decoder.init_state(model.embed_audio(mel))
    _, prefix = model.decoder(tokens[:, :4], state)
    first, _ = model.decoder(tokens[:, 4:5], prefix)
    model.decoder(tokens[:, 5:6], prefix)  # another branch from the same prefix
    again, _ = model.decoder(tokens[:, 4:5], prefix)
    assert prefix.offset == 4
    torch.testing.assert_close(first, again, atol=0, rtol=0)


@torch.no_grad()
def test_repeat_interleave_and_index_select(model, inputs) -> None:
    mel, tokens = inputs
    features = model.embed_audio(mel)  # 3 audios
    beams = 2
    state = model.decoder.init_state(features).repeat_interleave(beams)
    assert state.batch_size == 6 and state.rows_per_audio == beams  # cross K/V shared, not copied
    assert state.cross_k[0].shape[0] == 3
    history = tokens.repeat_interleave(beams, dim=0).clone()
    history[1::2, 2:] = torch.flip(history[1::2, 2:], dims=[1])  # the two beams of each audio diverge
    _, state = model.decoder(history[:, :6], state)

    def reference(rows: torch.Tensor, length: int) -> torch.Tensor:
        return model.logits(history[rows, :length], features[rows // beams])

    # beam-search style reorder: rows stay within their audio -> cross K/V still shared
    within = torch.tensor([1, 1, 2, 3, 5, 4])
    selected = state.index_select(within)
    assert selected.rows_per_audio == beams and selected.cross_k[0].shape[0] == 3
    logits, _ = model.decoder(history[within, 6:7], selected)
    torch.testing.assert_close(logits[:, 0], reference(within, 7)[:, -1], atol=ATOL, rtol=0)

    # arbitrary rows (dropping and mixing audios) -> cross K/V gathered per row
    mixed = torch.tensor([5, 0, 3])
    selected = state.index_select(mixed)
    assert selected.batch_size == 3 and selected.rows_per_audio == 1
    logits, _ = model.decoder(history[mixed, 6:8], selected)
    torch.testing.assert_close(logits, reference(mixed, 8)[:, 6:8], atol=ATOL, rtol=0)

    with pytest.raises(IndexError):
        state.index_select(torch.tensor([6]))
    with pytest.raises(ValueError):
        state.repeat_interleave(0)


@torch.no_grad()
def test_decoder_rejects_bad_inputs(model, inputs) -> None:
    mel, tokens = inputs
    state = model.decoder.init_state(model.embed_audio(mel))
    with pytest.raises(ValueError, match="rows"):
        model.decoder(tokens[:2], state)
    with pytest.raises(ValueError, match="context"):
        model.decoder(torch.zeros(3, TINY["n_text_ctx"] + 1, dtype=torch.long), state)
    with pytest.raises(ValueError, match="frames"):
        model.embed_audio(torch.zeros(1, TINY["n_mels"], 2 * TINY["n_audio_ctx"] + 2))
    with pytest.raises(ValueError, match="mel"):
        model.embed_audio(torch.zeros(1, TINY["n_mels"] + 1, 10))


@torch.no_grad()
def test_shorter_input_slices_the_positional_embedding(reference, model, inputs) -> None:
    mel, _ = inputs
    for n_frames in (60, 61):
        short = mel[:, :, :n_frames]
        n_ctx = (n_frames + 1) // 2
        # openai-whisper only takes full windows: build one whose context is exactly the short length.
        small = whisper_model.Whisper(whisper_model.ModelDimensions(**{**TINY, "n_audio_ctx": n_ctx})).eval()
        state = reference.state_dict()
        state["encoder.positional_embedding"] = state["encoder.positional_embedding"][:n_ctx]
        small.load_state_dict(state)
        features = model.embed_audio(short)
        assert features.shape == (3, n_ctx, TINY["n_audio_state"])
        torch.testing.assert_close(features, small.embed_audio(short), atol=ATOL, rtol=0)


def test_multilingual_and_num_languages() -> None:
    def build(n_vocab: int) -> Whisper:
        with torch.device("meta"):
            return Whisper(WhisperDims(**{**TINY, "n_vocab": n_vocab}))

    class Theirs:  # openai-whisper's property code on its dims, without building its model
        is_multilingual = whisper_model.Whisper.is_multilingual
        num_languages = whisper_model.Whisper.num_languages

        def __init__(self, n_vocab: int) -> None:
            self.dims = whisper_model.ModelDimensions(**{**TINY, "n_vocab": n_vocab})

    for n_vocab, multilingual in ((51864, False), (51865, True), (51866, True)):
        ours, theirs = build(n_vocab), Theirs(n_vocab)
        assert ours.is_multilingual is multilingual is theirs.is_multilingual
        assert ours.num_languages == theirs.num_languages
    assert build(51866).num_languages == 100  # large-v3


def test_alignment_heads(model) -> None:
    ours = Whisper(WhisperDims(**TINY))
    assert ours.alignment_heads.dtype == torch.bool
    assert ours.alignment_heads.tolist() == [[False] * 4, [True] * 4]
    ours.set_alignment_heads([(0, 1), (1, 3)])
    assert ours.alignment_heads.nonzero().tolist() == [[0, 1], [1, 3]]
    with pytest.raises(ConfigError):
        ours.set_alignment_heads([(2, 0)])


def test_dims_round_trip_and_strictness() -> None:
    dims = WhisperDims(**TINY)
    assert WhisperDims.from_dict(dims.to_dict()) == dims
    with pytest.raises(ConfigError, match="unknown"):
        WhisperDims.from_dict({**TINY, "n_mel": 80})
    with pytest.raises(ConfigError, match="missing"):
        WhisperDims.from_dict({k: v for k, v in TINY.items() if k != "n_vocab"})
    with pytest.raises(ConfigError):
        WhisperDims(**{**TINY, "n_audio_head": 3})  # 64 is not divisible by 3


@torch.no_grad()
def test_int8_quantized_model_runs_with_explicit_state(model, inputs) -> None:
    mel, tokens = inputs
    quantized = quantize_dynamic_int8(model)
    assert type(model.decoder.blocks[0].attn.query) is torch.nn.Linear  # the original is untouched
    assert model.decoder.output_projection is None
    expected = model(mel, tokens)
    features = quantized.embed_audio(mel)
    full = quantized.logits(tokens, features)
    state = quantized.decoder.init_state(features)
    pieces = []
    for i in range(tokens.shape[1]):
        logits, state = quantized.decoder(tokens[:, i : i + 1], state)
        pieces.append(logits)
    # Activation scales are dynamic (per call), so 1-token steps and one full pass differ slightly.
    incremental = torch.cat(pieces, dim=1)
    for got in (full, incremental):
        cosine = torch.nn.functional.cosine_similarity(got.flatten(0, 1), expected.flatten(0, 1), dim=-1)
        assert cosine.min() > 0.98, cosine.min()
    assert isinstance(state, DecoderState)


def _fresh_copy(model: Whisper) -> Whisper:
    copy = Whisper(model.dims).eval()
    copy.load_state_dict(model.state_dict())
    return copy


@torch.no_grad()
def test_int8_in_place_matches_the_copy_and_torch_quantize_dynamic(model, inputs) -> None:
    """The loaders' in-place path: no float32 nn.Linear left, each float weight freed at once (no reference
    cycle waiting for the garbage collector), and exactly the logits of the copying path and of torch's
    quantize_dynamic applied the way the copying path did before it swapped layers itself."""
    import gc
    import warnings
    import weakref

    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    mel, tokens = inputs
    copied = quantize_dynamic_int8(model)

    target = _fresh_copy(model)
    n_linear = sum(type(m) is torch.nn.Linear for m in target.modules())
    float_weights = [weakref.ref(m.weight) for m in target.modules() if type(m) is torch.nn.Linear]
    gc.disable()  # prove the float32 weights go by reference counting, not by a collection
    try:
        in_place = quantize_dynamic_int8(target, inplace=True)
        assert all(ref() is None for ref in float_weights)
    finally:
        gc.enable()
    assert in_place is target
    assert not any(type(m) is torch.nn.Linear for m in in_place.modules())
    assert sum(type(m) is DynamicQuantizedLinear for m in in_place.modules()) == n_linear + 1  # + projection
    assert in_place.decoder.token_embedding.weight.dtype == torch.float32  # the lookup table stays float

    library = _fresh_copy(model)
    embedding = library.decoder.token_embedding.weight
    projection = torch.nn.Linear(embedding.shape[1], embedding.shape[0], bias=False)
    projection.weight = torch.nn.Parameter(embedding.detach().clone(), requires_grad=False)
    library.decoder.output_projection = projection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qconfig = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
        library = torch.ao.quantization.quantize_dynamic(library, qconfig, inplace=True)

    expected = library(mel, tokens)
    assert torch.equal(in_place(mel, tokens), expected)
    assert torch.equal(copied(mel, tokens), expected)


@torch.no_grad()
def test_bfloat16_on_cpu(model, inputs) -> None:
    mel, tokens = inputs
    half = Whisper(model.dims).eval()
    half.load_state_dict(model.state_dict())
    half.to(torch.bfloat16)
    logits = half(mel, tokens)  # float32 mel is cast to the model dtype
    assert logits.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(
        logits.flatten(0, 1), model(mel, tokens).flatten(0, 1), dim=-1
    )
    assert cosine.min() > 0.98, cosine.min()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@torch.no_grad()
def test_half_precision_on_cuda(model, inputs, dtype) -> None:
    mel, tokens = inputs
    gpu = Whisper(model.dims).eval()
    gpu.load_state_dict(model.state_dict())
    gpu.to("cuda", dtype)
    features = gpu.embed_audio(mel.cuda())
    state = gpu.decoder.init_state(features).repeat_interleave(2)
    logits, state = gpu.decoder(tokens.cuda().repeat_interleave(2, dim=0), state)
    expected = model(mel, tokens).repeat_interleave(2, dim=0)
    cosine = torch.nn.functional.cosine_similarity(logits.cpu().flatten(0, 1), expected.flatten(0, 1), dim=-1)
    assert cosine.min() > 0.98, cosine.min()


def test_int8_decoder_only_keeps_the_encoder_float32(model) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    quantized = quantize_dynamic_int8(model, parts=("decoder",))
    kinds = {name.split(".")[0]: type(m) for name, m in quantized.named_modules()
             if isinstance(m, (torch.nn.Linear, DynamicQuantizedLinear))}
    assert kinds["encoder"] is torch.nn.Linear and kinds["decoder"] is DynamicQuantizedLinear
    mel = torch.randn(1, TINY["n_mels"], 2 * TINY["n_audio_ctx"])
    assert torch.equal(quantized.embed_audio(mel), model.embed_audio(mel))  # the encoder is untouched
    with pytest.raises(ConfigError, match="parts"):
        quantize_dynamic_int8(model, parts=("joiner",))
