"""The narrow layer over TabPFN's public fine-tuning API (wrapped, never forked).

Everything that touches TabPFN internals lives here: taking the network out of a
`TabPFNClassifier`, building training/inference wrappers that share it by reference
(`tabpfn.base.ModelSpecs`), one differentiable forward on a context/query pair, and
probability prediction with a given context.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch


@dataclasses.dataclass
class Network:
    """A TabPFN network with what is needed to wrap it again.

    Attributes:
      module: the torch module (trained in place).
      architecture_config: its architecture config.
      inference_config: its inference (preprocessing) config.
      architecture_name: the `tabpfn.architectures` name (for checkpoints).
    """

    module: torch.nn.Module
    architecture_config: Any
    inference_config: Any
    architecture_name: str

    def specs(self) -> Any:
        """`ModelSpecs` that use `module` by reference."""
        from tabpfn.base import ModelSpecs

        return ModelSpecs(
            model=self.module,
            architecture_config=self.architecture_config,
            inference_config=self.inference_config,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A detached copy of the weights."""
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def checkpoint(self) -> dict[str, Any]:
        """The dict `tabpfn.checkpoint.save_as_safetensors` writes."""
        return {
            "state_dict": self.module.state_dict(),
            "config": dataclasses.asdict(self.architecture_config),
            "architecture_name": self.architecture_name,
            "inference_config": dataclasses.asdict(self.inference_config),
        }


def network_of(tfm: Any) -> Network:
    """A private copy of the network inside a `TabPFNClassifier` (loaded if needed).

    The caller's classifier is left untouched: fine-tuning changes the copy.
    """
    if not hasattr(tfm, "models_"):
        tfm._initialize_model_variables()
    if len(tfm.models_) != 1:
        raise ValueError(
            f"the TFM holds {len(tfm.models_)} networks; fine-tuning needs exactly one"
        )
    module = copy.deepcopy(tfm.models_[0])
    arch_cfg = copy.deepcopy(tfm.configs_[0])
    return Network(
        module,
        arch_cfg,
        copy.deepcopy(tfm.inference_config_),
        _architecture_name(module),
    )


def _architecture_name(module: torch.nn.Module) -> str:
    from tabpfn.architectures import ARCHITECTURES

    mod = type(module).__module__
    for name, arch in ARCHITECTURES.items():
        if mod == arch.__name__ or mod.startswith(arch.__name__ + "."):
            return name
    raise ValueError(f"cannot tell the TabPFN architecture of {type(module).__name__}")


def make_classifier(
    net: Network,
    *,
    n_estimators: int,
    categorical: list[int],
    device: str,
    seed: int,
    batched: bool,
) -> Any:
    """A `TabPFNClassifier` over `net` (shared by reference)."""
    from tabpfn import TabPFNClassifier

    return TabPFNClassifier(
        model_path=net.specs(),
        n_estimators=n_estimators,
        categorical_features_indices=categorical or None,
        device=device,
        ignore_pretraining_limits=True,
        inference_precision=torch.float32,
        fit_mode="batched" if batched else "fit_preprocessors",
        random_state=seed,
    )


def freeze_unused(module: torch.nn.Module) -> None:
    """Freezes the regression head of a multitask checkpoint (it gets no gradient)."""
    try:
        from tabpfn.finetuning.finetuned_base import _parameters_unused_by_task
    except ImportError:  # older/newer tabpfn without multitask checkpoints
        return
    for p in _parameters_unused_by_task(module, "multiclass"):
        p.requires_grad = False


def query_loss(
    clf: Any,
    Xc: np.ndarray,
    yc: np.ndarray,
    Xq: np.ndarray,
    yq: np.ndarray,
    *,
    seed: int,
) -> torch.Tensor:
    """Cross-entropy of the query labels given the context, differentiable.

    Runs TabPFN's own preprocessing (fitted on the context, applied to the query)
    with `seed`, then a batched forward through the shared network.
    """
    from tabpfn.architectures.interface import PerformanceOptions
    from tabpfn.finetuning.data_util import (
        get_preprocessed_dataset_chunks,
        meta_dataset_collator,
    )

    n_ctx = len(yc)

    def split(X: Any, y: Any, stratify: Any = None) -> tuple[Any, Any, Any, Any]:
        # context first, then query, as assembled by build_meta_batch
        return X[:n_ctx], X[n_ctx:], y[:n_ctx], y[n_ctx:]

    X = np.concatenate([Xc, Xq])
    y = np.concatenate([yc, yq])
    ds = get_preprocessed_dataset_chunks(
        clf,
        X,
        y,
        split,
        max_data_size=None,
        model_type="classifier",
        equal_split_size=True,
        data_shuffle_seed=seed,
        preprocessing_random_state=seed,
        shuffle=False,
        force_no_stratify=True,
    )
    batch = meta_dataset_collator([ds[0]])
    clf.fit_from_preprocessed(
        batch.X_context,
        batch.y_context,
        batch.cat_indices,
        batch.configs,
        performance_options=PerformanceOptions(
            force_recompute_layer=False, use_chunkwise_inference=False
        ),
    )
    logits = clf.forward(batch.X_query, return_raw_logits=True)  # (Q, B=1, E, L)
    q, b, e, n_cls = logits.shape
    logits = logits.permute(1, 2, 3, 0).reshape(b * e, n_cls, q)
    target = batch.y_query.repeat(b * e, 1).long().to(logits.device)
    return torch.nn.functional.cross_entropy(logits, target)


def predict_proba(
    net: Network,
    Xc: np.ndarray,
    yc: np.ndarray,
    Xq: np.ndarray,
    n_classes: int,
    *,
    n_estimators: int,
    categorical: list[int],
    device: str,
    seed: int,
) -> np.ndarray:
    """(n, n_classes) probabilities of `Xq` with context (`Xc`, `yc`) (label codes)."""
    clf = make_classifier(
        net,
        n_estimators=n_estimators,
        categorical=categorical,
        device=device,
        seed=seed,
        batched=False,
    )
    was_training = net.module.training
    net.module.eval()
    try:
        clf.fit(Xc, yc)
        p = np.asarray(clf.predict_proba(Xq), np.float64)
    finally:
        net.module.train(was_training)
    out = np.zeros((len(Xq), n_classes))
    out[:, np.asarray(clf.classes_, np.int64)] = p
    return out


def _options() -> Any:
    from tabpfn.architectures.interface import PerformanceOptions

    return PerformanceOptions(
        force_recompute_layer=False, use_chunkwise_inference=False
    )


def context_cache(net: Network, Xc: torch.Tensor, yc: torch.Tensor) -> Any:
    """The network's KV cache of a context, for `class_logits` (None: not used).

    Only TabPFN v3.5-style networks (a many-class decoder) use it: their cached
    path then runs the query rows alone, with the same result as a forward of
    context and queries together (a test checks the energies against the full
    forward) at about half the cost per query batch.
    """
    if getattr(getattr(net.module, "heads", None), "many_class_decoder", None) is None:
        return None
    with torch.no_grad():
        _, cache = net.module(
            Xc[:, None, :],
            yc[:, None],
            task_type="multiclass",
            return_kv_cache=True,
            performance_options=_options(),
        )
    return cache


def class_logits(
    net: Network,
    Xc: torch.Tensor,
    yc: torch.Tensor,
    Xq: torch.Tensor,
    n_classes: int,
    *,
    cache: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised class logits of `Xq` given the context, differentiable in `Xq`.

    The network runs directly on the given inputs (no TabPFN preprocessing, which
    is NumPy and so not differentiable; the network standardises and ECDF-ranks
    features against the context rows itself, piecewise linearly): one forward of
    context and query rows, or of the query rows alone against `cache`. Query
    rows attend only to context rows, so a row's logits do not depend on the
    other query rows.

    TabPFN v3.5's many-class decoder returns log class probabilities: per head h,
    p_h(k | x) = softmax_k(u_hk(x)) with u_hk(x) = logsumexp of the attention
    scores between x and the context rows of class k; the output is the log of
    mean_h p_h, clamped. Those u_hk are the unnormalised logits (their logsumexp
    is not constant, unlike the output's). A tabpfn v2 network's linear decoder
    outputs unnormalised logits itself: they come back as one "head".

    Args:
      net: the network (put in eval mode by the caller).
      Xc: (N, d) context rows, float32 on the network's device.
      yc: (N,) their class codes 0..n_classes-1, float32.
      Xq: (M, d) query rows.
      n_classes: the context's class count.
      cache: `context_cache(net, Xc, yc)`, or None (one forward of both).

    Returns:
      `(u, out)`: u (H, M, n_classes) per-head unnormalised logits, and out
      (M, n_classes) the network's own output logits, for checks.

    Raises:
      NotImplementedError: an architecture other than tabpfn v2 or v3.5 (its
        decoder is not known to give unnormalised logits).
    """
    heads = getattr(net.module, "heads", None)
    decoder = getattr(heads, "many_class_decoder", None)
    if decoder is None:
        if net.architecture_name != "tabpfn_v2":
            raise NotImplementedError(
                f"unnormalised logits of a {net.architecture_name} network are not "
                "known; use a tabpfn_v2 or tabpfn_v3_5 checkpoint"
            )
        out = net.module(
            torch.cat([Xc, Xq])[:, None, :],
            yc[:, None],
            task_type="multiclass",
            performance_options=_options(),
        )[:, 0, :n_classes]
        return out[None], out
    res = net.module(
        Xq[:, None, :] if cache is not None else torch.cat([Xc, Xq])[:, None, :],
        yc[:, None],
        task_type="multiclass",
        only_return_standard_out=False,
        performance_options=_options(),
        kv_cache=cache,
        x_is_test_only=cache is not None,
    )
    if cache is not None:
        keys = cache.decoder_keys
    else:
        keys = heads.project_decoder_keys(res["train_embeddings"].transpose(0, 1))
    test = heads.mlp_classification(res["test_embeddings"].transpose(0, 1))
    q = decoder.q_projection(test)
    q = q.view(*q.shape[:2], decoder.num_heads, decoder.head_dim)
    if decoder.softmax_scaling_layer is not None:
        q = decoder.softmax_scaling_layer(q, keys.shape[1])
    # as ManyClassDecoder.attention_weights: scaled dot products, (H, M, N)
    scores = (
        torch.einsum("mhd,nhd->hmn", q[0], keys[0]) / float(decoder.head_dim) ** 0.5
    )
    u = torch.stack(
        [torch.logsumexp(scores[..., yc == k], dim=-1) for k in range(n_classes)], -1
    )
    return u, res["standard"][:, 0, :n_classes]
