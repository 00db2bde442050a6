"""Tampered, corrupted and hostile files: a clear error, never a wrong answer."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxscm
from jaxscm._io import FormatError

META = "__jaxscm__"


def _read(path: Path) -> tuple[dict, dict]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop(META).tobytes().decode())
    return meta, arrays


def _write(path: Path, meta: dict, arrays: dict, *, rehash: bool = True) -> None:
    """Writes a model file, recomputing the checksums (a deliberate tamper)."""
    if rehash:
        meta["arrays"] = {
            k: {
                "dtype": str(v.dtype),
                "shape": list(v.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest(),
            }
            for k, v in arrays.items()
        }
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{META: blob})


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    scm = jaxscm.random_scm(jax.random.key(0), 4)
    return jaxscm.save(tmp_path / "m.npz", scm)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("a.mechanisms.3.f.coef", np.array([np.nan], np.float32)),
        ("a.mechanisms.3.f.intercept", np.array(np.inf, np.float32)),
        ("a.mechanisms.1.noise.loc", np.array(np.nan, np.float32)),
        ("a.mechanisms.2.noise.scale", np.array(-1.0, np.float32)),
    ],
)
def test_load__refuses_nonfinite_or_negative_parameters(
    model_file: Path, field: str, value: np.ndarray
) -> None:
    meta, arrays = _read(model_file)
    arrays[field] = value
    _write(model_file, meta, arrays)
    node = f"x{field.split('.')[2]}"
    with pytest.raises(FormatError, match=rf"node '{node}'.*{field.split('.', 3)[3]}"):
        jaxscm.load(model_file)


def test_check_parameters__names_the_ensemble_member_and_node(key: jax.Array) -> None:
    from jaxscm._validate import ParameterError, check_parameters

    scms = [jaxscm.random_scm(jax.random.fold_in(key, i), 3) for i in range(2)]
    ens = jaxscm.stack(scms)
    leaves, treedef = jax.tree.flatten(ens)
    floats = [i for i, x in enumerate(leaves) if np.issubdtype(x.dtype, np.floating)]
    bad = np.array(leaves[floats[-1]])
    bad.reshape(-1)[-1] = np.nan
    leaves[floats[-1]] = bad
    with pytest.raises(ParameterError, match=r"ensemble member \d, node 'x\d'"):
        check_parameters(jax.tree.unflatten(treedef, leaves))


@pytest.mark.parametrize("value", [1.9, "1", True])
def test_load__refuses_non_integer_parent_indices(model_file: Path, value) -> None:
    meta, arrays = _read(model_file)
    meta["tree"]["static"]["parents"]["seq"][3]["seq"][0] = value
    _write(model_file, meta, arrays)
    with pytest.raises(FormatError, match="parent indices must be integers"):
        jaxscm.load(model_file)


def test_load__refuses_deeply_nested_metadata(model_file: Path) -> None:
    meta, arrays = _read(model_file)
    text = json.dumps(meta)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    blob = np.frombuffer(text.encode(), np.uint8)
    with open(model_file, "wb") as f:
        np.savez(f, **arrays, **{META: blob})
    with pytest.raises(FormatError, match="nests 100001 levels"):
        jaxscm.load(model_file)


def test_load__refuses_zip_bomb_before_decompressing(model_file: Path) -> None:
    meta, arrays = _read(model_file)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(50_000_000, np.uint8))  # 50 MB of zeros
    with zipfile.ZipFile(model_file, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, v)
            data = buf.getvalue() if k == "a.mechanisms.3.f.coef" else b.getvalue()
            zf.writestr(f"{k}.npy", data)
        b = io.BytesIO()
        np.lib.format.write_array(b, np.frombuffer(json.dumps(meta).encode(), np.uint8))
        zf.writestr(f"{META}.npy", b.getvalue())
    assert model_file.stat().st_size < 1_000_000
    with pytest.raises(FormatError, match="unpacks to 50000128 bytes but its metadata"):
        jaxscm.load(model_file)


def test_load__finds_the_file_save_wrote_without_a_suffix(tmp_path: Path) -> None:
    scm = jaxscm.random_scm(jax.random.key(1), 3)
    written = jaxscm.save(tmp_path / "m", scm)
    assert written.name == "m.npz"
    assert jaxscm.load(tmp_path / "m").nodes == scm.nodes


@pytest.mark.parametrize("record", ["[]", "{}", '{"format": "jaxscm-fit"}', "[" * 5000])
def test_load_fit__refuses_a_malformed_fit_json(tmp_path: Path, record: str) -> None:
    scms = [jaxscm.random_scm(jax.random.key(i), 3) for i in range(2)]
    folder = tmp_path / "model"
    folder.mkdir()
    jaxscm.save(folder / "model.npz", jaxscm.stack(scms))
    (folder / "fit.json").write_text(record)
    with pytest.raises(FormatError, match="fit.json"):
        jaxscm.load_fit(folder)


# --- the estimator's folder -----------------------------------------------------------


@pytest.fixture(scope="module")
def saved_estimator(tmp_path_factory):
    pytest.importorskip("tabpfn")
    from _finetune_data import TFM, table

    from finetune import CausalMixFTClassifier

    X, y, _ = table(60)
    clf = CausalMixFTClassifier(
        tfm=TFM,
        augment="none",
        max_steps=1,
        eval_every=1,
        n_estimators_train=1,
        n_estimators=1,
        random_state=0,
    ).fit(X, y)
    return clf.save(tmp_path_factory.mktemp("est") / "clf"), X


def _copy(src: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, tmp_path / "clf"))


def _edit_meta(folder: Path, edit, *, rehash: bool) -> None:
    from finetune import _persist

    meta = json.loads((folder / "estimator.json").read_text())
    meta = edit(meta)
    if rehash and isinstance(meta, dict):
        meta["sha256"]["estimator.json"] = _persist._meta_sha(meta)
    (folder / "estimator.json").write_text(json.dumps(meta))


def _load(folder: Path):
    from finetune import CausalMixFTClassifier

    return CausalMixFTClassifier.load(folder)


@pytest.mark.torch
def test_estimator_load__refuses_a_bit_flip_in_the_weights(saved_estimator, tmp_path):
    folder = _copy(saved_estimator[0], tmp_path)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-100] ^= 0x10
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"model.safetensors fails its checksum"):
        _load(folder)


@pytest.mark.torch
def test_estimator_load__refuses_reversed_classes(saved_estimator, tmp_path):
    folder = _copy(saved_estimator[0], tmp_path)

    def reverse(meta):
        meta["encoder"]["classes"] = meta["encoder"]["classes"][::-1]
        return meta

    _edit_meta(folder, reverse, rehash=False)
    with pytest.raises(FormatError, match="estimator.json.*fails its checksum"):
        _load(folder)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {**m, "extra": 1}, "unexpected or missing entries"),
        (lambda m: [], "JSON object"),
        (lambda m: {**m, "config": {**m["config"], "device": "gpu9"}}, "torch device"),
        (lambda m: {**m, "params": {**m["params"], "nope": 1}}, "unknown parameters"),
    ],
)
def test_estimator_load__refuses_edited_metadata(
    saved_estimator, tmp_path, edit, message
):
    folder = _copy(saved_estimator[0], tmp_path)
    _edit_meta(folder, edit, rehash=True)
    with pytest.raises(FormatError, match=message):
        _load(folder)


@pytest.mark.torch
def test_estimator_load__missing_weights_never_download_or_lock(
    saved_estimator, tmp_path
):
    folder = _copy(saved_estimator[0], tmp_path)
    (folder / "model.safetensors").unlink()
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        _load(folder)
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.torch
def test_estimator_load__refuses_huge_architecture_sizes(saved_estimator, tmp_path):
    from safetensors.numpy import load_file, save_file

    from finetune import _persist

    folder = _copy(saved_estimator[0], tmp_path)
    weights = folder / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(weights), "np") as f:
        header = dict(f.metadata())
    config = json.loads(header["config"])
    config["embed_dim"] = 10_000_000
    header["config"] = json.dumps(config)
    save_file(load_file(str(weights)), str(weights), metadata=header)

    def rehash(meta):
        meta["sha256"]["model.safetensors"] = _persist._file_sha(weights)
        return meta

    _edit_meta(folder, rehash, rehash=True)
    with pytest.raises(FormatError, match="embed_dim=10000000"):
        _load(folder)


@pytest.mark.torch
def test_estimator_load__untouched_copy_predicts_the_same(saved_estimator, tmp_path):
    folder, X = saved_estimator
    a, b = _load(folder), _load(_copy(folder, tmp_path))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# --- fine-tuning checkpoints ----------------------------------------------------------


def _checkpoint(folder: Path) -> Path:
    torch = pytest.importorskip("torch")
    from finetune import _checkpoint as ckpt

    w = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3)}
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))]).state_dict()
    state = {"fingerprint": "f", "history": [], "steps": [], "best_step": 0}
    state |= {"best_score": float("-inf"), "bad": 0, "stop_reason": "interrupted"}
    best = {k: v.clone() for k, v in w.items()}
    ckpt.save(folder, step=3, weights=w, best=best, optimizer=opt, state=state)
    return folder


@pytest.mark.torch
def test_checkpoint__round_trips_after_verification(tmp_path: Path) -> None:
    from finetune import _checkpoint as ckpt

    loaded = ckpt.load(_checkpoint(tmp_path / "c"))
    assert loaded["step"] == 3
    assert loaded["best_score"] == float("-inf")
    assert loaded["weights"]["a"].tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda d: (d / "optimizer-3.pt").write_bytes(b"\x80\x04garbage"), "optimizer"),
        (lambda d: (d / "weights-3.safetensors").write_bytes(b"\x00" * 7), "weights"),
        (lambda d: (d / "weights-3.safetensors").unlink(), "missing"),
        (lambda d: (d / "state.json").write_text("[]"), "not a JSON object"),
        (lambda d: (d / "state.json").write_text("[" * 100_000), "unreadable"),
        (
            lambda d: (d / "state.json").write_text(
                (d / "state.json").read_text().replace('"step": 3', '"step": 30')
            ),
            "state.json fails its checksum",
        ),
    ],
)
def test_checkpoint__refuses_a_tampered_checkpoint(tmp_path, tamper, message) -> None:
    from finetune import _checkpoint as ckpt

    folder = _checkpoint(tmp_path / "c")
    tamper(folder)
    with pytest.raises(ValueError, match=rf"cannot resume .*{message}.*start afresh"):
        ckpt.load(folder)


@pytest.mark.torch
def test_estimator_fit__checks_the_checkpoint_before_fitting_the_scm(
    tmp_path, monkeypatch
) -> None:
    pytest.importorskip("tabpfn")
    from _finetune_data import TFM, table

    import jaxscm as jx
    from finetune import CausalMixFTClassifier

    folder = _checkpoint(tmp_path / "c")
    (folder / "optimizer-3.pt").write_bytes(b"corrupted")

    def never(*args, **kwargs):
        raise AssertionError("the SCM was fitted before the checkpoint was checked")

    monkeypatch.setattr(jx, "fit_scm", never)
    X, y, _ = table(60)
    clf = CausalMixFTClassifier(
        tfm=TFM, max_steps=1, checkpoint_dir=str(folder), random_state=0
    )
    with pytest.raises(ValueError, match="optimizer-3.pt fails its checksum"):
        clf.fit(X, y)


# --- sample time: the edges that write or hand over rows ------------------------------


def _broken_scm() -> jaxscm.SCM:
    """An SCM whose last node has a NaN coefficient (built in memory: no load check)."""
    import dataclasses

    scm = jaxscm.random_scm(jax.random.key(0), 4)
    mech = scm.mechanisms[3]
    f = dataclasses.replace(mech.f, coef=mech.f.coef * np.float32(np.nan))
    mechs = (*scm.mechanisms[:3], dataclasses.replace(mech, f=f))
    return dataclasses.replace(scm, mechanisms=mechs)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_write_samples__refuses_non_finite_rows_naming_the_column(
    tmp_path: Path, suffix: str
) -> None:
    import bridge

    path = tmp_path / f"s.{suffix}"
    with pytest.raises(ValueError, match="sampled column 'x3' holds NaN"):
        bridge.write_samples(path, jax.random.key(0), _broken_scm(), 10)
    assert not path.exists()


def test_write_parquet__refuses_non_finite_rows_naming_the_column(tmp_path) -> None:
    import bridge

    path = tmp_path / "s.parquet"
    with pytest.raises(ValueError, match="sampled column 'x3' holds NaN"):
        bridge.write_parquet(path, jax.random.key(0), _broken_scm(), 10, chunk=4)
    assert list(tmp_path.iterdir()) == []


def test_labelled_rows__refuse_non_finite_features_naming_the_column() -> None:
    from bridge._stream import labelled_rows, to_host

    out = labelled_rows(
        jax.random.key(0),
        0,
        _broken_scm(),
        8,
        np.arange(8),
        features=np.array([0, 3, -1]),
        fill=np.array([0.0, 0.0, np.nan], np.float32),
        target=1,
        n_classes=1_000_000,
    )
    with pytest.raises(ValueError, match="synthetic rows: sampled column 'x3'"):
        to_host(out)


# --- the fuzz suite, small --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.torch
def test_fuzz_files__no_traceback_no_wrong_answer_no_lost_file() -> None:
    pytest.importorskip("tabpfn")
    from benchmarks import fuzz_files

    r = fuzz_files.run(50, seed=3, out=None)
    assert sum(r["counts"].values()) == 50
    assert r["counts"]["traceback"] == 0, r["problems"]
    assert r["counts"]["accepted_but_wrong"] == 0, r["problems"]
    assert r["counts"]["unclear"] == 0, r["problems"]
    assert r["files_changed"] == 0, r["problems"]


def test_load_fit__refuses_an_edited_fit_json(tmp_path: Path) -> None:
    from jaxscm.fitting._fit_scm import FitInfo

    ens = jaxscm.stack([jaxscm.random_scm(jax.random.key(i), 3) for i in range(2)])
    info = FitInfo(
        columns=ens.columns,
        edge_probs=np.full((3, 3), 0.5),
        dags=np.asarray(ens.adjacency, bool),
        mechanisms=({}, {}),
        timings={"total": 1.0},
        missing_rate={},
        dropped_rows=0,
        n_rows=10,
        options={},
    )
    folder = jaxscm.save_fit(tmp_path / "model", ens.with_info(info))
    assert jaxscm.load_fit(folder).info.n_rows == 10
    text = (folder / "fit.json").read_text()
    (folder / "fit.json").write_text(text.replace('"n_rows": 10', '"n_rows": 11'))
    with pytest.raises(FormatError, match="fit.json.*fails its checksum"):
        jaxscm.load_fit(folder)


@pytest.mark.parametrize("entry", [{}, {"seq": {}}, {"seq": [], "x": 1}, [0]])
def test_load__refuses_a_malformed_parent_tuple(model_file: Path, entry) -> None:
    meta, arrays = _read(model_file)
    meta["tree"]["static"]["parents"]["seq"][3] = entry
    _write(model_file, meta, arrays)
    with pytest.raises(FormatError, match="static entry|list|sequence"):
        jaxscm.load(model_file)
