"""Saving and loading models: exact round trips, and refusal of bad files."""

from __future__ import annotations

import json
import zipfile

import jax
import numpy as np
import pytest

import jaxscm
from jaxscm import FormatError, load, random_scm, sample, save, stack


def _leaves_equal(a, b) -> None:
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=False):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("mechanism", ["linear", "mlp", "tree", "mixed"])
def test_save_load__round_trip_is_exact(tmp_path, mechanism):
    scm = random_scm(
        jax.random.key(0),
        7,
        mechanism=mechanism,
        noise="mixed",
        n_categorical=2,
        target=True,
    )
    path = save(tmp_path / "model.npz", scm)
    back = load(path)
    _leaves_equal(scm, back)
    assert back.columns == scm.columns
    assert back.parents == scm.parents
    key = jax.random.key(1)
    np.testing.assert_array_equal(
        np.asarray(sample(key, back, 50)), np.asarray(sample(key, scm, 50))
    )


def test_save_load__ensemble_round_trip_is_exact(tmp_path):
    ens = stack(
        [
            random_scm(jax.random.key(i), 5, mechanism=m)
            for i, m in enumerate(["linear", "tree"])
        ]
    )
    back = load(save(tmp_path / "ens", ens))
    _leaves_equal(ens, back)
    assert isinstance(back, jaxscm.Ensemble)


def test_save__is_atomic_and_leaves_no_temp_files(tmp_path):
    save(tmp_path / "m.npz", random_scm(jax.random.key(0), 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_save__failure_leaves_nothing_behind(tmp_path):
    class NotAModel:
        pass

    with pytest.raises(TypeError, match="cannot save a NotAModel"):
        save(tmp_path / "bad.npz", NotAModel())
    assert list(tmp_path.iterdir()) == []


def test_load__missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no jaxscm model file at"):
        load(tmp_path / "nope.npz")


def test_load__truncated_file_is_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 4))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="corrupted or truncated"):
        load(path)


def test_load__flipped_byte_is_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 4, mechanism="mlp"))
    data = bytearray(path.read_bytes())
    # flip a byte inside the first array's data (after the zip local header)
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError):
        load(path)


def _rewrite_meta(path, edit) -> None:
    with np.load(path, allow_pickle=False) as npz:
        contents = {k: npz[k] for k in npz.files}
    meta = json.loads(contents["__jaxscm__"].tobytes())
    edit(meta, contents)
    contents["__jaxscm__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **contents)


@pytest.mark.parametrize("as_ensemble", [False, True])
def test_load__tree_files_written_before_leaf_words_load_and_sample_the_same(
    tmp_path, as_ensemble
):
    scms = [random_scm(jax.random.key(i), 5, mechanism="tree") for i in range(2)]
    model = stack(scms) if as_ensemble else scms[0]
    path = save(tmp_path / "m.npz", model)

    def drop_words(meta, contents):
        def walk(node):
            if isinstance(node, dict):
                node.get("leaves", {}).pop("words", None)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(meta["tree"])
        for name in [k for k in meta["arrays"] if ".words." in k]:
            del meta["arrays"][name], contents[name]

    _rewrite_meta(path, drop_words)
    back = load(path)
    key = jax.random.key(3)
    np.testing.assert_array_equal(
        np.asarray(sample(key, back, 64)), np.asarray(sample(key, model, 64))
    )


def test_load__unknown_version_is_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 3))
    _rewrite_meta(path, lambda m, c: m.update(version=99))
    with pytest.raises(FormatError, match="format version 99 is not supported"):
        load(path)


def test_load__cyclic_parents_are_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 3, edge_prob=1.0))

    def make_cycle(meta, contents):
        # node 0 (a root) gets node 2 as a parent
        meta["tree"]["static"]["parents"]["seq"][0] = {"seq": [2]}

    _rewrite_meta(path, make_cycle)
    with pytest.raises(FormatError, match="parent index 2 must be in"):
        load(path)


def test_load__shape_mismatch_is_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 3, edge_prob=1.0))

    def grow(meta, contents):
        name = next(k for k in contents if k.endswith(".coef"))
        contents[name] = np.zeros(7, np.float32)

    _rewrite_meta(path, grow)
    with pytest.raises(FormatError, match="metadata says"):
        load(path)


def test_load__unknown_class_is_refused(tmp_path):
    path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 2))
    _rewrite_meta(path, lambda m, c: m["tree"].update(type="os.system"))
    with pytest.raises(FormatError, match="unknown model class 'os.system'"):
        load(path)


def test_load__non_npz_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    path.write_text("hello")
    with pytest.raises(FormatError):
        load(path)
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("a.npy", b"junk")
    with pytest.raises(FormatError):
        load(tmp_path / "z.npz")


def test_save__file_mode_follows_the_umask(tmp_path):
    # The temporary file behind the atomic write is created 0600; the saved model must
    # get the mode any other file written by the user gets.
    import os

    mask = os.umask(0o022)
    try:
        path = save(tmp_path / "m.npz", random_scm(jax.random.key(0), 3))
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_load__feature_maps_load_in_a_fresh_process(tmp_path):
    # Distilled models hold feature maps (encoders, pipelines); `import jaxscm` alone
    # must be enough to load them.
    import subprocess
    import sys

    from jaxscm._features import Pipeline, Standardize
    from jaxscm._linear import Linear
    from jaxscm._mechanisms import Additive, Root
    from jaxscm._noise import gaussian
    from jaxscm._schema import Column
    from jaxscm._scm import SCM

    f = Pipeline(
        steps=(
            Standardize(
                mean=np.zeros(1, np.float32), scale=np.full(1, 2.0, np.float32)
            ),
            Linear(coef=np.ones(1, np.float32), intercept=np.zeros((), np.float32)),
        )
    )
    scm = SCM(
        mechanisms=(Root(gaussian()), Additive(f=f, noise=gaussian())),
        columns=(Column("a"), Column("b")),
        parents=((), (0,)),
    )
    save(tmp_path / "m.npz", scm)
    code = (
        f"import jaxscm; print(type(jaxscm.load({str(tmp_path / 'm.npz')!r})).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SCM"


def test_load_and_stack__compile_nothing(tmp_path, caplog):
    """Host arrays reach the device by copy: `jnp.asarray` of a NumPy array compiles
    one program per shape and dtype (a fitted ensemble has hundreds of shapes)."""
    from jaxscm._ensemble import plan

    scms = [
        random_scm(jax.random.key(i), 11, mechanism="mixed", noise="mixed")
        for i in range(3)
    ]
    jax.block_until_ready(scms)
    path = save(tmp_path / "ens", stack(scms))
    with jax.log_compiles(), caplog.at_level("WARNING"):
        back = load(path)
        stack([*scms, scms[0]])
        plan(back)
    compiled = [r.getMessage() for r in caplog.records if "ompil" in r.getMessage()]
    assert compiled == []
