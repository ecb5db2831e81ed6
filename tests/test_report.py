import pandas as pd

from seedbench.analysis.report import summary_table


def test_summary_counts_every_status_and_averages_finished_only():
    runs = pd.DataFrame(
        {
            "method": ["sgd"] * 5,
            "model": ["fc"] * 5,
            "dataset": ["digits"] * 5,
            "status": ["finished", "finished", "diverged", "failed", "interrupted"],
            "val_acc": [0.90, 0.80, 0.10, None, None],
            "test_acc": [0.88, 0.78, None, None, None],
        }
    )
    [row] = summary_table(runs).to_dict("records")
    assert (row["n"], row["diverged"], row["failed"], row["unfinished"]) == (2, 1, 1, 1)
    assert row["val_acc (%)"] == "85.00 +- 7.07"  # the unit in the header; the diverged run's 10% is not averaged in
