"""Where the real datasets are (their READMEs say what each is): `../shared/data` beside the repository,
or the folder that `SHOPKEEPER_SHARED_DATA` names, for a clone that lives elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get("SHOPKEEPER_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
ONLINE_RETAIL = SHARED_DATA / "online-retail" / "online_retail.csv.gz"
OPEN_BANDIT = SHARED_DATA / "open-bandit-dataset-sample"
