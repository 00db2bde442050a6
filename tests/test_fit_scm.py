"""fit_scm, model directories and the fit-scm / sample command line, end to end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

import jaxscm
from finetune.cli import main

ROOT = Path(__file__).resolve().parents[1]

# One compiled sampler: models of the same structure share the compilation.
_sample = jax.jit(jaxscm.sample, static_argnums=2)


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    city = rng.choice(["oslo", "paris", "rome"], n)
    b = 1.5 * a + (city == "rome") + 0.5 * rng.normal(size=n)
    count = np.round(30 + 10 * b + rng.normal(size=n)).astype(int)
    y = np.where(b + rng.normal(size=n) > 0.5, "yes", "no")
    df = pd.DataFrame({"a": a, "city": city, "b": b, "count": count, "y": y})
    df.loc[::25, "a"] = np.nan  # imputed, rate recorded
    return df


@pytest.fixture(scope="module")
def fitted():
    model = jaxscm.fit_scm(
        _table(),
        "y",
        n_dags=3,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=3),
        seed=1,
        mechanisms="linear",
        label=jaxscm.LabelOptions.off(),
        progress=False,
    )
    return model, model.info


def test_fit_scm__ensemble_over_the_table_columns_with_the_target_flagged(fitted):
    model, info = fitted
    assert isinstance(model, jaxscm.Ensemble)
    assert model.nodes == ("a", "city", "b", "count", "y")
    assert [c.kind for c in model.columns] == [
        "numeric",
        "categorical",
        "numeric",
        "integer",
        "categorical",
    ]
    assert model.columns[-1].is_target
    assert model.target == 4
    x = _sample(jax.random.key(0), model, 64)
    assert x.shape == (3, 64, 5)
    assert bool(jnp_isfinite(x))
    assert set(np.unique(np.asarray(x[..., 4]))) <= {0.0, 1.0}
    assert info.dags.shape == (3, 5, 5)
    assert not info.dags[:, 4, :].any()
    assert info.missing_rate["a"] == pytest.approx(12 / 300)
    assert set(info.timings) >= {"discover", "fit", "distill", "total"}
    # graphs in the model are the sampled ones
    assert np.array_equal(np.asarray(model.adjacency, bool), info.dags)


def jnp_isfinite(x) -> bool:
    return np.isfinite(np.asarray(x)).all()


def _fingerprint(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest()


def test_fit_scm__samples_bit_identical_to_the_recorded_fingerprint(fitted):
    # Recorded on CPU (x86-64, float32) from main before the one-schema refactor
    # (commit 74b0efc): the same table, options and key must give the same rows.
    # A plain `jaxscm.sample` call now runs the compiled program; op-by-op dispatch
    # (what a plain call did before) stays pinned under `jax.disable_jit()`. The two
    # differ in the last bit of linear nodes (XLA fuses the dot product), and the
    # compiled fingerprints are the ones `jax.jit(jaxscm.sample)` gave before too.
    # Since `stack` pads every position to one envelope (issue 17), the second
    # model's compiled rows are its op-by-op rows: 65 of its 640 values moved by at
    # most 2.4e-7 (1-2 ulp, one linear column): the exact padding of the wider
    # envelope changed how XLA fuses that node's dot product.
    model, _ = fitted
    with jax.disable_jit():
        x = jaxscm.sample(jax.random.key(0), model, 64)
    assert _fingerprint(x)[:16] == "cc1eedf89df50dd0"
    x = jaxscm.sample(jax.random.key(0), model, 64)
    assert _fingerprint(x)[:16] == "a7111c8807e95fe4"
    # LabelOptions.off(): the target as before the label options (issue 12); the
    # default label mechanism is pinned in tests/test_label.py.
    fast = jaxscm.fit_scm(
        _table(120),
        "y",
        n_dags=2,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=2),
        seed=2,
        label=jaxscm.LabelOptions.off(),
        progress=False,
        # The marginal fixes (default on) change this table's numeric nodes; off,
        # the model is the one recorded before them, bit for bit.
        marginals=jaxscm.MarginalOptions.off(),
    )
    with jax.disable_jit():
        x = jaxscm.sample(jax.random.key(0), fast, 64)
    assert _fingerprint(x)[:16] == "7e9b219859091882"
    x = jaxscm.sample(jax.random.key(0), fast, 64)
    assert _fingerprint(x)[:16] == "7e9b219859091882"


def test_fit_scm__a_given_schema_or_encoded_codes_give_the_same_model(fitted):
    from jaxscm.fitting import prepare

    model, info = fitted
    df = _table()
    schema = jaxscm.infer_schema(df, "y")
    assert schema == info.columns
    opts = dict(
        n_dags=3,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=3),
        seed=1,
        mechanisms="linear",
        label=jaxscm.LabelOptions.off(),
        progress=False,
    )
    given = jaxscm.fit_scm(df, columns=schema, **opts)
    codes = prepare(df, columns=schema).codes
    encoded = jaxscm.fit_scm(codes, columns=schema, **opts)
    for other in (given, encoded):
        assert other.columns == model.columns
        for u, v in zip(jax.tree.leaves(other), jax.tree.leaves(model), strict=True):
            assert np.array_equal(u, v)
    with pytest.raises(jaxscm.SchemaError, match=r"\['extra'\].*not in the schema"):
        jaxscm.fit_scm(df.assign(extra=1.0), columns=schema, **opts)
    with pytest.raises(ValueError, match="either a schema"):
        jaxscm.fit_scm(df, columns=schema, kinds={"a": "numeric"}, **opts)


def test_to_frame__sampled_rows_round_trip_through_the_schema_codec(fitted):
    import bridge

    model, _ = fitted
    x = np.asarray(_sample(jax.random.key(5), model, 64)[1])
    frame = bridge.to_frame(x, model)
    for j, col in enumerate(model.columns):
        values = frame[col.name].to_numpy(dtype=object)
        if col.kind == "categorical":
            assert set(values) <= set(col.categories)
            np.testing.assert_array_equal(col.labels_of(x[:, j]), values)
        np.testing.assert_array_equal(col.code_of(values), x[:, j])


def test_fit_scm__reproducible_and_honours_required_and_forbidden_edges():
    kwargs = dict(
        n_dags=4,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=2),
        seed=4,
        mechanisms="linear",
        progress=False,
        required=[("city", "count")],
        forbidden=[("a", "b")],
    )
    a = jaxscm.fit_scm(_table(120), "y", **kwargs)
    b = jaxscm.fit_scm(_table(120), "y", **kwargs)
    info = a.info
    assert a.columns == b.columns
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(u, v)
    assert info.dags[:, 1, 3].all()
    assert not info.dags[:, 0, 2].any()
    with pytest.raises(ValueError, match="no column 'zzz'"):
        jaxscm.fit_scm(_table(120), "y", required=[("a", "zzz")], progress=False)


def test_save_fit__round_trip_and_refuses_to_clobber(fitted, tmp_path):
    model, info = fitted
    out = jaxscm.save_fit(tmp_path / "m", model)
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "model.npz"]
    back = jaxscm.load_fit(out)
    info2 = back.info
    key = jax.random.key(3)
    assert np.array_equal(_sample(key, back, 64), _sample(key, model, 64))
    assert info2.columns == info.columns
    assert np.array_equal(info2.dags, info.dags)
    with pytest.raises(FileExistsError, match="overwrite"):
        jaxscm.save_fit(out, model)
    jaxscm.save_fit(out, model, overwrite=True)
    user = tmp_path / "notes"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a model directory"):
        jaxscm.save_fit(user, model, overwrite=True)
    assert (user / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "notes"]


def test_save_fit__an_error_leaves_nothing_behind(fitted, tmp_path):
    _, info = fitted
    with pytest.raises(TypeError):
        jaxscm.save_fit(tmp_path / "m", types.SimpleNamespace(info=info))
    assert list(tmp_path.iterdir()) == []


def test_load_fit__corrupted_record_is_a_format_error(fitted, tmp_path):
    model, info = fitted
    out = jaxscm.save_fit(tmp_path / "m", model)
    record = json.loads((out / "fit.json").read_text())
    record["version"] = 99
    (out / "fit.json").write_text(json.dumps(record))
    with pytest.raises(jaxscm.FormatError, match="fit.json"):
        jaxscm.load_fit(out)
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        jaxscm.load_fit(tmp_path)


def test_cli__fit_scm_then_sample_csv_and_parquet(tmp_path, capsys):
    df = _table(200)
    df.to_csv(tmp_path / "data.csv", index=False)
    model_dir = tmp_path / "model"
    rc = main(
        [
            "fit-scm",
            str(tmp_path / "data.csv"),
            "--target",
            "y",
            "-o",
            str(model_dir),
            "--n-dags",
            "2",
            "--n-bootstrap",
            "2",
            "--mechanisms",
            "linear",
            "--quiet",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "fitted 2 SCMs on 200 rows x 5 columns" in out
    assert "causalmixft sample" in out
    rc = main(
        [
            "sample",
            str(model_dir),
            "-n",
            "50",
            "-o",
            str(tmp_path / "s.csv"),
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns) == list(df.columns)
    assert len(s) == 50
    assert set(s["y"]) <= {"yes", "no"}
    assert set(s["city"]) <= {"oslo", "paris", "rome"}
    assert s["count"].dtype.kind == "i"
    assert not s.isna().any().any()
    rc = main(
        [
            "sample",
            str(model_dir),
            "-n",
            "30",
            "-o",
            str(tmp_path / "s.parquet"),
            "--member",
            "1",
            "--chunk",
            "7",
        ]
    )
    assert rc == 0
    p = pd.read_parquet(tmp_path / "s.parquet")
    assert len(p) == 30
    assert p["y"].astype(str).isin(["yes", "no"]).all()
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "data.csv",
        "model",
        "s.csv",
        "s.parquet",
    ]


def test_cli__bad_input_is_one_clear_line_and_no_files(tmp_path, capsys):
    _table(50).to_csv(tmp_path / "data.csv", index=False)
    rc = main(
        [
            "fit-scm",
            str(tmp_path / "data.csv"),
            "--target",
            "label",
            "-o",
            str(tmp_path / "m"),
            "--quiet",
        ]
    )
    assert rc == 2
    assert "target column 'label' is not in the table" in capsys.readouterr().err
    rc = main(
        ["sample", str(tmp_path / "nowhere"), "-n", "5", "-o", str(tmp_path / "x.csv")]
    )
    assert rc == 2
    assert "not a model directory" in capsys.readouterr().err
    rc = main(["sample", str(tmp_path), "-n", "5", "-o", str(tmp_path / "x.txt")])
    assert rc == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["data.csv"]


def test_cli__fit_scm_label_switches_reach_the_model(tmp_path):
    _table(200).to_csv(tmp_path / "data.csv", index=False)
    common = ["--n-dags", "2", "--n-bootstrap", "2", "--mechanisms", "linear"]
    data = str(tmp_path / "data.csv")
    assert (
        main(
            [
                "fit-scm",
                data,
                "--target",
                "y",
                "-o",
                str(tmp_path / "m"),
                *common,
                "--quiet",
            ]
        )
        == 0
    )
    label = json.loads((tmp_path / "m" / "fit.json").read_text())["options"]["label"]
    assert label["parents"] == "all"
    assert label["class_share"] is True
    flags = ["--target-parents", "discovered", "--no-class-share", "--quiet"]
    assert (
        main(
            [
                "fit-scm",
                data,
                "--target",
                "y",
                "-o",
                str(tmp_path / "plain"),
                *common,
                *flags,
            ]
        )
        == 0
    )
    plain = json.loads((tmp_path / "plain" / "fit.json").read_text())["options"]
    assert plain["label"]["parents"] == "discovered"
    assert plain["label"]["class_share"] is False
    assert plain["label_report"]["added_edges"] == []


def test_fit_scm__parallel_workers_give_the_serial_model():
    kwargs = dict(
        n_dags=3,
        discovery=jaxscm.DiscoveryOptions(n_bootstrap=3),
        seed=5,
        progress=False,
    )
    serial = jaxscm.fit_scm(_table(120), "y", n_jobs=1, **kwargs)
    workers = jaxscm.fit_scm(_table(120), "y", n_jobs=2, **kwargs)
    np.testing.assert_array_equal(serial.info.edge_probs, workers.info.edge_probs)
    assert serial.info.mechanisms == workers.info.mechanisms
    assert jax.tree.structure(serial) == jax.tree.structure(workers)
    for u, v in zip(jax.tree.leaves(serial), jax.tree.leaves(workers), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def _fit_scm_cli(tmp_path, stderr) -> subprocess.CompletedProcess:
    """`python -m finetune.cli fit-scm` (progress bars asked for) in a child process."""
    _table(200).to_csv(tmp_path / "data.csv", index=False)
    cmd = [sys.executable, "-m", "finetune.cli", "fit-scm", str(tmp_path / "data.csv")]
    cmd += ["--target", "y", "-o", str(tmp_path / "m"), "--n-dags", "2"]
    cmd += ["--n-bootstrap", "2", "--mechanisms", "linear"]
    env = {**os.environ, "CAUSALMIXFT_JAX_CACHE": "off", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=300, check=True
    )


# what a tqdm bar writes: its descriptions, a carriage return per redraw, a rate
_BAR_MARKS = ("discover (", "fit + distill", "\r", "it/s", "%|")


def test_cli__fit_scm_writes_no_progress_bars_to_a_log_file(tmp_path):
    with open(tmp_path / "stderr.log", "w") as log:
        out = _fit_scm_cli(tmp_path, log)
    assert b"fitted 2 SCMs on 200 rows" in out.stdout
    text = (tmp_path / "stderr.log").read_text()
    assert [m for m in _BAR_MARKS if m in text] == []


@pytest.mark.slow  # ~11 s: the control for the test above, the same run on a terminal
def test_cli__fit_scm_draws_progress_bars_on_a_terminal(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    import threading

    parent, child = pty.openpty()
    # a new pty is 0 columns wide, and tqdm draws a 0-column bar as nothing
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(parent, 4096)
            except OSError:  # EIO: the child side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        _fit_scm_cli(tmp_path, child)
    finally:
        os.close(child)
        reader.join(timeout=30)
        os.close(parent)
    text = b"".join(chunks).decode(errors="replace")
    assert "discover (" in text
    assert "fit + distill" in text
