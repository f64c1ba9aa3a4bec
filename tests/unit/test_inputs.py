"""Bad input caught where it enters: config values, CoNLL-U word ids, huge table headers, huge texts."""

from __future__ import annotations

import math

import pytest

from auditkit import data
from auditkit.errors import ConfigError, DataError

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("value", [NAN, INF, 0.0, -1.0])
def test_probe_c_must_be_finite_and_positive(value):
    from auditkit.audit import AuditConfig
    from auditkit.steering import SteeringConfig

    with pytest.raises(ConfigError, match="probe_C"):
        AuditConfig(probe_C=value)
    with pytest.raises(ConfigError, match="probe_C"):
        SteeringConfig(probe_C=value)


@pytest.mark.parametrize("field", ["lr", "l1_coefficient", "expansion_factor"])
@pytest.mark.parametrize("value", [NAN, INF])
def test_sae_options_must_be_finite(field, value):
    from auditkit.sae_options import SAEAuditOptions

    with pytest.raises(ConfigError, match="finite"):
        SAEAuditOptions(**{field: value})


def test_pursuit_code_probe_c_must_be_finite():
    from auditkit.pursuit_options import PursuitAuditOptions

    with pytest.raises(ConfigError, match="code_probe_C"):
        PursuitAuditOptions(code_probe_C=NAN)


@pytest.mark.parametrize("word_id", ["x", "3-a", "a-3", "1.x", "-1", ""])
def test_conllu_malformed_word_id_names_file_and_line(tmp_path, word_id):
    rows = [
        "# text = The cat",
        "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_",
        f"{word_id}\tcat\tcat\tNOUN\t_\t_\t0\troot\t_\t_",
        "",
    ]
    path = tmp_path / "bad.conllu"
    path.write_text("\n".join(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.conllu.*line 3.*word id") as err:
        data.load_conllu(path)
    assert "\n" not in str(err.value)


def test_missing_column_message_stays_short_for_a_huge_header(tmp_path):
    path = tmp_path / "wide.csv"
    columns = ["y" * 1_000_000, *(f"c{i}" for i in range(50))]
    path.write_text(",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'text'") as err:
        data.load_table(path)
    message = str(err.value)
    assert len(message) < 600 and "1,000,000 characters" in message and "43 more" in message

