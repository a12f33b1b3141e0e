"""The latent mapping and its partial nonlocal block: masked attention against a float64 reference, zero
weight on hole keys, chunked / hole-only paths against the full path, bounded memory, shapes, gradients;
the skip path (its start, its least-squares fit) and the global context (statistics of valid positions)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from restore.config import model_config  # noqa: E402
from restore.nets import mapping as mapping_module  # noqa: E402
from restore.nets.attention import PartialNonLocal, downsample_mask, masked_attention  # noqa: E402
from restore.nets.mapping import GlobalContext, Mapping  # noqa: E402

TINY = model_config("tiny").mapping


def reference_attention(query, key, value, hole):
    """Full L x L scores in float64, -inf on hole keys, softmax over keys: (N, C_v, L)."""
    q, k, v = (t.double() for t in (query, key, value))
    scores = torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(q.shape[1])
    weights = scores.masked_fill(hole[:, None, :], float("-inf")).softmax(dim=-1)
    return torch.einsum("nqk,nck->ncq", weights, v)


def attention_inputs(seed: int, n: int = 2, ck: int = 8, cv: int = 5, length: int = 50, dtype=torch.float32):
    """Random queries, keys, values and a hole pattern with both holes and valid keys in every sample."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(n, ck, length, generator=gen, dtype=dtype) for _ in range(2))
    v = torch.randn(n, cv, length, generator=gen, dtype=dtype)
    hole = torch.rand(n, length, generator=gen) < 0.4
    hole[:, 0], hole[:, 1] = True, False
    return q, k, v, hole


def hole_mask(n: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """A (n, 1, H, W) {0, 1} mask: a random rectangle per sample plus scattered pixels."""
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 1, *size, generator=gen) < 0.02).float()
    for i in range(n):
        top, left = (int(torch.randint(0, s // 2, (1,), generator=gen)) for s in size)
        mask[i, :, top : top + size[0] // 3, left : left + size[1] // 4] = 1
    return mask


def block_with_random_output(channels: int, seed: int, chunk: int = 7) -> PartialNonLocal:
    """A block whose output projection W is non-zero (it starts at zero, which would hide the attention)."""
    torch.manual_seed(seed)
    block = PartialNonLocal(channels, 8, hole_res_blocks=1, chunk=chunk)
    torch.nn.init.normal_(block.out.weight, std=0.3)
    return block


def test_masked_attention_matches_reference():
    q, k, v, hole = attention_inputs(0, dtype=torch.float64)
    expected = reference_attention(q, k, v, hole)
    assert torch.allclose(masked_attention(q, k, v, hole, chunk=64), expected, rtol=0, atol=1e-12)
    got32 = masked_attention(q.float(), k.float(), v.float(), hole, chunk=64)
    assert got32.dtype == torch.float32
    assert torch.allclose(got32.double(), expected, atol=1e-5)


def test_hole_keys_get_exactly_zero_weight():
    q, k, v, hole = attention_inputs(1)
    before = masked_attention(q, k, v, hole, chunk=16)
    gen = torch.Generator().manual_seed(2)
    v2 = torch.where(hole[:, None, :], 1e3 * torch.randn(v.shape, generator=gen), v)
    k2 = torch.where(hole[:, None, :], 1e3 * torch.randn(k.shape, generator=gen), k)
    assert not torch.equal(v2, v) and not torch.equal(k2, k)
    assert torch.equal(masked_attention(q, k2, v2, hole, chunk=16), before)


def test_sample_whose_keys_are_all_holes_gives_zeros():
    q, k, v, hole = attention_inputs(3)
    hole[1] = True
    out = masked_attention(q, k, v, hole, chunk=9)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.allclose(out[0].double(), reference_attention(q, k, v, hole)[0], atol=1e-5)


def test_chunked_equals_unchunked():
    q, k, v, hole = attention_inputs(4, length=61)
    assert torch.allclose(
        masked_attention(q, k, v, hole, chunk=7), masked_attention(q, k, v, hole, chunk=61), atol=1e-6
    )


def test_query_subset_equals_full_path_at_those_positions():
    q, k, v, hole = attention_inputs(5, length=40)
    positions = torch.tensor([0, 3, 4, 17, 39, 22])
    full = masked_attention(q, k, v, hole, chunk=40)
    assert torch.allclose(masked_attention(q, k, v, hole, chunk=7, queries=positions), full[..., positions], atol=1e-6)


def test_downsample_mask_is_conservative():
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 5, 9] = 1
    small = downsample_mask(mask, (8, 8))
    assert small.shape == (1, 1, 8, 8)
    assert small[0, 0, 1, 2] == 1 and small.sum() == 1
    odd = torch.zeros(1, 1, 37, 53)
    odd[0, 0, 36, 52] = 1
    odd[0, 0, 20, 0] = 1
    down = downsample_mask(odd, (10, 14))
    assert down[0, 0, 9, 13] == 1 and down[0, 0, 20 * 10 // 37, 0] == 1
    assert set(down.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(downsample_mask(down, (10, 14)), down)


def test_partial_nonlocal_eval_matches_train_and_keeps_valid_features():
    block = block_with_random_output(16, seed=6)
    x = torch.randn(3, 16, 12, 10)
    mask = hole_mask(3, (48, 40), seed=7)
    mask[2] = 1  # every key a hole: the attention contributes nothing, only the hole blocks act
    hole = downsample_mask(mask, (12, 10)).expand_as(x).bool()
    trained = block.train()(x, mask)
    with torch.no_grad():
        evaluated = block.eval()(x, mask)
    assert 0 < hole[:2].float().mean() < 0.9
    assert torch.allclose(evaluated, trained, atol=1e-5)
    assert torch.equal(evaluated[~hole], x[~hole]) and torch.equal(trained[~hole], x[~hole])
    assert not torch.allclose(evaluated[hole], x[hole])


def test_fresh_block_is_identity_without_holes():
    torch.manual_seed(8)
    block = PartialNonLocal(16, 8, hole_res_blocks=1, chunk=7)
    x = torch.randn(2, 16, 6, 6)
    assert torch.equal(block(x, torch.zeros(2, 1, 6, 6)), x)


class LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any operation produces inside the context."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("training", [True, False])
def test_attention_memory_is_bounded_by_the_chunk(training):
    side, chunk = 64, 64
    length = side * side
    block = block_with_random_output(16, seed=9, chunk=chunk).train(training)
    x = torch.randn(1, 16, side, side)
    mask = torch.zeros(1, 1, side, side)
    mask[..., :, : side // 2] = 1
    with torch.no_grad(), LargestTensor() as probe:
        out = block(x, mask)
    assert out.shape == x.shape
    assert probe.largest <= chunk * length < length * length


def test_mapping_shapes_with_and_without_mask():
    torch.manual_seed(10)
    mapping = Mapping(TINY)
    z = torch.randn(2, TINY.latent, 12, 16)
    full_mask = hole_mask(2, (48, 64), seed=11)
    latent_mask = downsample_mask(full_mask, (12, 16))
    torch.nn.init.normal_(mapping.block.out.weight, std=0.3)
    with_full = mapping(z, full_mask)
    assert with_full.shape == z.shape
    assert torch.allclose(mapping(z, latent_mask), with_full, atol=1e-6)
    plain = mapping(z)
    assert plain.shape == z.shape and not torch.allclose(plain, with_full)
    assert torch.allclose(mapping(z, torch.zeros_like(full_mask)), plain, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(mapping.eval()(z, full_mask), with_full, atol=1e-5)


def test_mapping_without_block_ignores_mask():
    torch.manual_seed(12)
    mapping = Mapping(replace(TINY, nonlocal_block=False))
    assert mapping.block is None
    z = torch.randn(1, TINY.latent, 8, 8)
    out = mapping(z, hole_mask(1, (32, 32), seed=13))
    assert out.shape == z.shape and torch.equal(out, mapping(z))


def test_mapping_gradients_reach_every_parameter():
    torch.manual_seed(14)
    mapping = Mapping(TINY).train()
    torch.nn.init.normal_(mapping.block.out.weight, std=0.3)
    z = torch.randn(2, TINY.latent, 8, 8)
    mapping(z, hole_mask(2, (32, 32), seed=15)).square().mean().backward()
    for name, param in mapping.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


SKIPPED = replace(TINY, skip=True, global_context=True)


def test_fresh_skip_mapping_is_its_linear_path_outside_holes_and_zero_inside():
    torch.manual_seed(16)
    mapping = Mapping(SKIPPED)
    z = torch.randn(2, TINY.latent, 8, 8)
    mask = hole_mask(2, (32, 32), seed=17)
    hole = downsample_mask(mask, (8, 8))
    linear = mapping.skip(z)
    assert torch.equal(mapping(z), linear)
    assert torch.allclose(mapping(z, mask), linear * (1 - hole), atol=1e-6)
    # Once the body's last conv moves off zero, every parameter (the global context's included) learns.
    torch.nn.init.normal_(mapping.narrow[-1][0].weight, std=0.3)
    torch.nn.init.normal_(mapping.block.out.weight, std=0.3)
    mapping(z, mask).square().mean().backward()
    for name, param in mapping.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_fit_skip_recovers_an_affine_map():
    gen = torch.Generator().manual_seed(18)
    weight = torch.randn(TINY.latent, TINY.latent, 1, 1, generator=gen)
    bias = torch.randn(TINY.latent, generator=gen)
    source = torch.randn(3, TINY.latent, 6, 7, generator=gen)
    target = torch.nn.functional.conv2d(source, weight, bias)
    mapping = Mapping(SKIPPED)
    assert mapping.fit_skip(source, target) < 1e-6
    assert torch.allclose(mapping.skip.weight, weight, atol=1e-4)
    assert torch.allclose(mapping.skip.bias, bias, atol=1e-4)
    noisy = target + 0.5 * torch.randn(target.shape, generator=gen)
    assert mapping.fit_skip(source, noisy) > 0.05
    with pytest.raises(ValueError, match="no skip path"):
        Mapping(TINY).fit_skip(source, target)


@pytest.mark.parametrize("film", [False, True])
def test_global_context_reads_valid_positions_only(film: bool):
    torch.manual_seed(19)
    context = GlobalContext(4, film=film)
    if film:  # it starts as the identity; a trained one modulates
        assert torch.equal(context(torch.ones(1, 4, 3, 3) * 2), torch.ones(1, 4, 3, 3) * 2)
        torch.nn.init.normal_(context.mlp[-1].weight, std=0.3)
    x = torch.randn(2, 4, 6, 6)
    hole = torch.zeros(2, 1, 6, 6)
    hole[:, :, :3] = 1
    changed = x.clone()
    changed[:, :, :3] += 10 * torch.randn(2, 4, 3, 6)
    valid = (slice(None), slice(None), slice(3, None))
    assert torch.allclose(context(x, hole)[valid], context(changed, hole)[valid], atol=1e-5)
    assert not torch.allclose(context(x)[valid], context(changed)[valid], atol=1e-3)
    # A photo's statistics move every position; an all-hole map falls back on every position.
    shifted = context(x + 1)
    assert not torch.allclose(shifted - 1, context(x), atol=1e-3)
    assert torch.allclose(context(x, torch.ones_like(hole)), context(x), atol=1e-6)


def test_film_context_quantiles_are_those_of_the_valid_positions(monkeypatch: pytest.MonkeyPatch):
    gen = torch.Generator().manual_seed(20)
    x = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    valid = torch.rand(2, 1, 9, 11, generator=gen) < 0.6
    for positions in (mapping_module.QUANTILE_POSITIONS, 25):  # every position, then an even stride of them
        monkeypatch.setattr(mapping_module, "QUANTILE_POSITIONS", positions)
        step = -(-99 // positions)
        found = mapping_module._quantiles(x, valid)
        for n in range(2):
            for c in range(3):
                kept = x[n, c].flatten()[::step][valid[n, 0].flatten()[::step]].numpy()
                for level, value in zip(mapping_module.CONTEXT_QUANTILES, found, strict=True):
                    assert value[n, c, 0, 0].item() == pytest.approx(float(np.quantile(kept, level)))


def test_film_mapping_trains_every_parameter():
    torch.manual_seed(21)
    mapping = Mapping(replace(SKIPPED, context_film=True))
    torch.nn.init.normal_(mapping.narrow[-1][0].weight, std=0.3)
    torch.nn.init.normal_(mapping.context.mlp[-1].weight, std=0.3)
    torch.nn.init.normal_(mapping.block.out.weight, std=0.3)
    mapping(torch.randn(2, TINY.latent, 8, 8), hole_mask(2, (32, 32), seed=22)).square().mean().backward()
    for name, param in mapping.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
