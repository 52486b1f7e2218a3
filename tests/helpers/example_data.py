"""Small example files a new user would bring: a customer-churn table (train and test) and a wide file to apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def churn_table(n: int, seed: int) -> pd.DataFrame:
    """One row per customer; ``churned`` = cancelled within 90 days (yes/no). Has an ID column on purpose."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n)
    monthly = rng.uniform(20, 120, n).round(2)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.5, 0.3, 0.2])
    calls = rng.poisson(1.5, n)
    total = (tenure * monthly * rng.uniform(0.9, 1.1, n)).round(2)
    logit = (-0.5 + 1.5 * (contract == "month-to-month") + 0.03 * (monthly - 70) - 0.05 * tenure
             + 0.4 * calls + rng.normal(0, 0.5, n))
    return pd.DataFrame({
        "customer_id": np.arange(10_000 + 100_000 * seed, 10_000 + 100_000 * seed + n),
        "tenure_months": tenure, "monthly_charges": monthly, "total_charges": total,
        "contract": contract, "support_calls": calls, "churned": np.where(logit > 0, "yes", "no"),
    })


def write_churn_files(directory: Path, train_rows: int = 300, test_rows: int = 150) -> dict[str, Path]:
    """``churn.csv`` (training), ``churn_test.csv`` (the user's own test file) and ``data.csv`` (= churn.csv)."""
    directory.mkdir(parents=True, exist_ok=True)
    train = churn_table(train_rows, seed=0)
    paths = {"churn.csv": directory / "churn.csv", "churn_test.csv": directory / "churn_test.csv",
             "data.csv": directory / "data.csv"}
    train.to_csv(paths["churn.csv"], index=False)
    train.to_csv(paths["data.csv"], index=False)
    churn_table(test_rows, seed=1).to_csv(paths["churn_test.csv"], index=False)
    return paths
