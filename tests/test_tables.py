"""Table-1 formatting (exact strings) and that every render format parses back."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from seedbench.analysis.stats import compare, variance_study
from seedbench.analysis.tables import FORMATS, format_cell, render, row_label, table1, variance_table


def runs(method: str, values, model="fc", dataset="mnist", D=None, status="finished", start_seed=0) -> list[dict]:
    rows = []
    for i, v in enumerate(values):
        row = {"method": method, "model": model, "dataset": dataset, "seed": start_seed + i, "status": status, "acc": v}
        if D is not None:
            row["D"] = D
        rows.append(row)
    return rows


@pytest.fixture
def paper_like() -> pd.DataFrame:
    """SGD 98.00 +- 0.20 and RBD 93.89 +- 0.02 on FC-MNIST (ratio 93.89/98.00 = 0.958 -> 0.96)."""
    rows = runs("sgd", [0.978, 0.980, 0.982], D=101770) + runs("rbd", [0.9387, 0.9389, 0.9391], D=101770)
    rows += runs("sgd", [0.50, 0.60], model="cnn", dataset="cifar10", D=78330)
    rows += runs("rbd", [0.45, 0.45], model="cnn", dataset="cifar10", D=78330)
    return pd.DataFrame(rows)


def test_table1_cells_exactly_as_in_the_paper(paper_like):
    t = table1(paper_like, "acc", baseline="sgd", scale=100)
    assert list(t.columns) == ["sgd", "rbd"]  # baseline first
    assert t.loc["FC-MNIST D=101,770", "sgd"] == "98.00 +- 0.20 (1)"
    assert t.loc["FC-MNIST D=101,770", "rbd"] == "93.89 +- 0.02 (0.96)"
    # CNN-CIFAR10: 45.00 / 55.00 = 0.818 -> 0.82; a constant arm has std 0.00
    assert t.loc["CNN-CIFAR10 D=78,330", "rbd"] == "45.00 +- 0.00 (0.82)"
    assert t.loc["CNN-CIFAR10 D=78,330", "sgd"] == "55.00 +- 7.07 (1)"
    assert t.index.name == "task"


def test_table1_ratio_uses_means_and_is_scale_free(paper_like):
    a = table1(paper_like, "acc", baseline="sgd", scale=100)
    b = table1(paper_like, "acc", baseline="sgd", scale=1, digits=4)
    assert a.loc["FC-MNIST D=101,770", "rbd"].endswith("(0.96)")
    assert b.loc["FC-MNIST D=101,770", "rbd"] == "0.9389 +- 0.0002 (0.96)"
    c = table1(paper_like, "acc", baseline="sgd", ratio_digits=4)
    assert c.loc["FC-MNIST D=101,770", "rbd"] == "0.94 +- 0.00 (0.9581)"  # 0.9389 / 0.98


@pytest.mark.parametrize(
    ("model", "dataset", "label"),
    [("fc", "mnist", "FC-MNIST"), ("cnn", "fmnist", "CNN-FMNIST"), ("cnn", "cifar10", "CNN-CIFAR10"), ("fc", "digits", "FC-DIGITS")],
)
def test_row_labels(model, dataset, label):
    assert row_label({"model": model, "dataset": dataset}) == label
    assert row_label({"model": model, "dataset": dataset}, [101770, 101770]) == f"{label} D=101,770"


def test_no_D_column_no_suffix_and_missing_cells():
    df = pd.DataFrame(runs("sgd", [0.9, 0.92]) + runs("rbd", [0.8], dataset="fmnist"))
    t = table1(df, "acc", baseline="sgd", scale=100)
    assert list(t.index) == ["FC-FMNIST", "FC-MNIST"]
    assert t.loc["FC-MNIST", "rbd"] == "-"
    assert t.loc["FC-FMNIST", "sgd"] == "-"
    assert t.loc["FC-FMNIST", "rbd"] == "80.00"  # one seed: no std; no baseline in the row: no ratio


def test_failed_and_diverged_are_annotated_not_hidden():
    df = pd.DataFrame(
        runs("sgd", [0.9, 0.92]) + runs("rbd", [0.9, 0.92]) + runs("rbd", [0.1], status="diverged", start_seed=2)
        + runs("rbd", [np.nan, np.nan], status="failed", start_seed=3)
    )  # fmt: skip
    t = table1(df, "acc", baseline="sgd", scale=100)
    assert t.loc["FC-MNIST", "rbd"] == "91.00 +- 1.41 (1.00) [1 diverged, 2 failed]"


def test_format_cell():
    assert format_cell(93.891, 0.0249, 0.9583) == "93.89 +- 0.02 (0.96)"
    assert format_cell(98.0, 0.2, None, is_baseline=True) == "98.00 +- 0.20 (1)"
    assert format_cell(float("nan"), float("nan"), None) == "-"


def test_variance_table_layout():
    df = pd.DataFrame(
        runs("kaiming", [0.9229 + d for d in (-0.0035, 0, 0.0035)], model="resnet50") + runs("xavier", [0.92, 0.9274, 0.925], model="resnet50")
    )
    vs = variance_study(df, "acc", "method", within=["model"], baseline="kaiming")
    vt = variance_table(vs, scale=100)
    first = vt.iloc[0]
    assert [first["model"], first["method"], first["mean +- std"], first["max"]] == ["resnet50", "kaiming", "92.29 +- 0.35", "max 92.64"]
    assert first["BF p vs baseline (holm)"] == "baseline"
    assert vt.iloc[1]["max"] == "max 92.74"


# --- renderers -------------------------------------------------------------------------------


@pytest.fixture
def frames(paper_like) -> dict[str, pd.DataFrame]:
    numeric = compare(paper_like, "acc", "method", within=["model", "dataset"], n_resamples=500)
    return {"table1": table1(paper_like, "acc", "sgd", scale=100), "compare": numeric}


def test_json_loads_back(frames):
    records = json.loads(render(frames["table1"], "json"))
    assert records[1] == {"task": "FC-MNIST D=101,770", "sgd": "98.00 +- 0.20 (1)", "rbd": "93.89 +- 0.02 (0.96)"}
    numeric = json.loads(render(frames["compare"], "json"))
    assert len(numeric) == 2 and numeric[0]["correction"] == "holm"
    assert numeric[0]["welch_p"] == pytest.approx(frames["compare"]["welch_p"].iloc[0])
    assert numeric[0]["paired_t_p"] is None or isinstance(numeric[0]["paired_t_p"], float)


def test_csv_reads_back(frames):
    back = pd.read_csv(io.StringIO(render(frames["table1"], "csv")), index_col="task")
    pd.testing.assert_frame_equal(back, frames["table1"], check_names=False)
    numeric = pd.read_csv(io.StringIO(render(frames["compare"], "csv")))
    np.testing.assert_allclose(numeric["diff"], frames["compare"]["diff"])


def test_markdown_is_a_pipe_table(frames):
    lines = render(frames["table1"], "markdown").strip().splitlines()
    assert lines[0] == "| task | sgd | rbd |"
    assert set(lines[1].replace("|", "").split()) <= {":---", "---:"}
    assert lines[3] == "| FC-MNIST D=101,770 | 98.00 +- 0.20 (1) | 93.89 +- 0.02 (0.96) |"
    ncols = len(frames["compare"].columns)
    assert all(line.count(" | ") == ncols - 1 for line in render(frames["compare"], "markdown").strip().splitlines())


def test_latex_tabular(frames):
    text = render(frames["table1"], "latex")
    lines = text.strip().splitlines()
    assert lines[0] == r"\begin{tabular}{lll}" and lines[-1] == r"\end{tabular}"
    assert r"FC-MNIST D=101,770 & 98.00 $\pm$ 0.20 (1) & 93.89 $\pm$ 0.02 (0.96) \\" in lines
    body = [line for line in lines if line.endswith(r"\\")]
    assert all(line.count(" & ") == 2 for line in body)
    numeric = render(frames["compare"], "latex")
    assert r"arm\_a" in numeric and "_" not in numeric.replace(r"\_", "")


def test_terminal_text_and_console(frames):
    text = render(frames["table1"], "terminal", title="Table 1")
    assert "Table 1" in text and "93.89 +- 0.02 (0.96)" in text and "FC-MNIST D=101,770" in text
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render(frames["table1"], "terminal", console=console)
    assert "98.00 +- 0.20 (1)" in console.file.getvalue()
    wide = render(frames["compare"], "terminal")
    assert "welch_p_adj" in wide and "…" not in wide  # wide frames are not truncated


def test_unknown_format_names_the_valid_ones(frames):
    with pytest.raises(ValueError) as err:
        render(frames["table1"], "html")
    assert all(f in str(err.value) for f in FORMATS)


# --- the reports a user reads: units, baseline, width ------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """sgd, rbd and a plugin arm with a long name on FC and CNN; on CNN, nes ran but every run diverged."""
    from tests.study_store import write_study_store
    from tests.test_store import make_record, write_run

    root = write_study_store(
        tmp_path_factory.mktemp("tables") / "store",
        methods={"sgd": 0.90, "rbd": 0.88, "sign_descent_with_a_long_plugin_name": 0.89},
        models=("fc", "cnn"),
        init_seeds=range(3),
        data_seeds=range(2),
    )
    for seed in range(2):
        write_run(root, f"nes/cnn/s{seed}", make_record(f"nes{seed}", model="cnn", seed=seed, status="diverged", method="nes"))
    return root


def test_store_report_is_a_frame_with_its_title_in_attrs(store):
    from seedbench.analysis.api import Store

    summary = Store(store).report()
    assert isinstance(summary, pd.DataFrame) and summary.attrs["title"].startswith("seedbench report: accuracy (%)")
    assert {"val_acc (%)", "test_acc (%)"} <= set(summary.columns)
    layout = Store(store).report("test_acc", baseline="sgd")
    assert layout.index.name == "task: test_acc (%)" and layout.attrs["title"] == "test_acc (%), mean +- std over seeds (ratio to sgd)"
    assert list(layout.columns)[0] == "sgd"
    loss = Store(store).report("val_loss", baseline="sgd")  # losses are shown as stored, not x100
    assert loss.index.name == "task: val_loss" and loss.loc["FC-DIGITS D=101,770", "sgd"].startswith("0.40 +- 0.00")


def test_compare_is_in_percent_with_the_reference_as_b_and_no_empty_pairs(store):
    from seedbench.analysis.api import Store

    result = Store(store).compare("test_acc")
    # on CNN nes has runs but no finished one: its 3 pairs there have no statistics and are left out
    assert result.attrs["unit"] == "%" and result.attrs["left_out"] == 3
    assert (result["n_a"] > 0).all() and (result["n_b"] > 0).all()
    assert "nes" not in set(result["arm_a"]) | set(result["arm_b"])
    with_sgd = result[(result["arm_a"] == "sgd") | (result["arm_b"] == "sgd")]
    assert (with_sgd["arm_b"] == "sgd").all()  # diff = arm - reference
    fc = result[(result["model"] == "fc") & (result["arm_a"] == "rbd") & (result["arm_b"] == "sgd")].iloc[0]
    runs = Store(store).runs("model = 'fc'")
    expected = 100 * (runs.loc[runs["method"] == "rbd", "test_acc"].mean() - runs.loc[runs["method"] == "sgd", "test_acc"].mean())
    assert fc["diff"] == pytest.approx(expected)  # percentage points, about -2
    header = render(result, "csv").splitlines()[0].split(",")
    assert {"mean_a (%)", "diff (%)", "diff_ci_low (%)", "mde (%)", "n_a", "welch_p_adj"} <= set(header)


def test_compare_fits_120_columns_and_wide_shows_everything(store, capsys):
    from tests.study_store import run_command

    run_command(["compare", "--store", str(store), "--metric", "test_acc"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "A-B (%) [95% CI]" in out and "sign_descent_with_a_long" in out and "3 pair(s) left out" in " ".join(out.split())
    assert "FC-DIGITS" in out and "welch_p_adj" not in out
    run_command(["compare", "--store", str(store), "--metric", "test_acc", "--wide"])
    wide = capsys.readouterr().out
    assert max(len(line) for line in wide.splitlines()) > 200 and "welch_p_adj" in wide and "levene_p_adj" in wide
    assert "mean_a (%)" in wide and "…" not in wide


def test_every_format_names_the_unit_in_its_headers():
    frame = pd.DataFrame({"arm_a": ["a"], "diff": [1.5], "welch_p": [0.01]})
    frame.attrs.update(unit="%", unit_columns=["diff"])
    assert render(frame, "csv").splitlines()[0] == "arm_a,diff (%),welch_p"
    assert json.loads(render(frame, "json")) == [{"arm_a": "a", "diff (%)": 1.5, "welch_p": 0.01}]
    assert "| arm_a | diff (%) | welch_p |" in render(frame, "markdown")
    assert r"diff (\%)" in render(frame, "latex") and "diff (%)" in render(frame, "terminal")
    frame.attrs["unit"] = None  # a loss: no unit, the names as they are
    assert render(frame, "csv").splitlines()[0] == "arm_a,diff,welch_p"
