"""Plots are written as valid, non-blank PNG/SVG files, and bad requests fail before drawing."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from seedbench.analysis.plots import KINDS, curves_figure, distribution_figure, plot_curves, plot_distribution

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("mnist", "fmnist"):
        for method, n in (("sgd", 6), ("rbd", 5), ("single", 1)):
            for seed in range(n):
                status = "diverged" if (method == "rbd" and seed == 4) else "finished"
                rows.append({"method": method, "dataset": dataset, "seed": seed, "status": status, "acc": rng.normal(0.9, 0.01)})
    rows.append({"method": "const", "dataset": "mnist", "seed": 0, "status": "finished", "acc": 0.5})
    rows.append({"method": "const", "dataset": "mnist", "seed": 1, "status": "finished", "acc": 0.5})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def epochs() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for method in ("sgd", "rbd", "single"):
        for seed in range(4 if method != "single" else 1):
            last = 3 if (method == "rbd" and seed == 0) else 8  # one run stopped early
            for epoch in range(1, last + 1):
                acc = 0.9 - 0.5 * np.exp(-epoch / 3) + rng.normal(0, 0.01)
                rows.append({"method": method, "seed": seed, "epoch": epoch, "val_acc": acc})
    return pd.DataFrame(rows)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def assert_nontrivial_png(path: Path) -> None:
    width, height = png_size(path)
    assert width > 200 and height > 200
    pixels = imread(path)
    assert pixels.std() > 0.05  # not a blank canvas


def assert_valid_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 50 and path.stat().st_size > 5_000


@pytest.mark.parametrize("kind", KINDS)
def test_distribution_png_per_kind(runs, tmp_path, kind):
    out = plot_distribution(runs, "acc", "method", kind, tmp_path / f"{kind}.png")
    assert out == tmp_path / f"{kind}.png"
    assert_nontrivial_png(out)


def test_distribution_svg_faceted(runs, tmp_path):
    single = plot_distribution(runs, "acc", "method", "box", tmp_path / "one.png")
    faceted = plot_distribution(runs, "acc", "method", "box", tmp_path / "facets.png", within=["dataset"])
    assert png_size(faceted)[0] > png_size(single)[0]  # one panel per dataset
    svg = plot_distribution(runs, "acc", "method", "violin", tmp_path / "sub" / "violin.svg", within="dataset")
    assert_valid_svg(svg)


def test_curves_png_and_svg(epochs, tmp_path):
    assert_nontrivial_png(plot_curves(epochs, "val_acc", "method", tmp_path / "curves.png"))
    assert_valid_svg(plot_curves(epochs, "val_acc", "method", tmp_path / "curves.SVG"))


def test_unknown_extension_or_kind_fails_before_writing(runs, epochs, tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        plot_distribution(runs, "acc", "method", "box", tmp_path / "x.jpg")
    with pytest.raises(ValueError, match=r"\.svg"):
        plot_curves(epochs, "val_acc", "method", tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="violin"):
        plot_distribution(runs, "acc", "method", "histogram", tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_missing_column_is_a_clear_error(runs, tmp_path):
    with pytest.raises(KeyError, match="val_loss"):
        plot_distribution(runs, "val_loss", "method", "box", tmp_path / "x.png")


# -- what a panel shows: the arms that ran there, in display units -----------------------------


def test_a_panel_has_a_slot_only_for_arms_that_ran_and_finished_there():
    """The demo's CNN panel drew an empty "rbd n=0" slot: rbd ran on FC only."""
    rows = [{"method": m, "model": "fc", "seed": s, "status": "finished", "acc": 0.9} for m in ("sgd", "rbd") for s in range(3)]
    rows += [{"method": "sgd", "model": "cnn", "seed": s, "status": "finished", "acc": 0.9} for s in range(3)]
    rows += [{"method": "nes", "model": "cnn", "seed": s, "status": "diverged", "acc": None} for s in range(2)]
    fig = distribution_figure(pd.DataFrame(rows), "acc", "method", "box", within=["model"], order=["sgd"])
    cnn, fc = fig.axes  # panels in task order
    assert [t.get_text() for t in cnn.get_xticklabels()] == ["sgd\nn=3"]
    assert [t.get_text() for t in fc.get_xticklabels()] == ["sgd\nn=3", "rbd\nn=3"]  # the order given first
    assert cnn.get_title() == "model=cnn\nno finished runs: nes (n=0, 2 diverged)"  # named, not an empty slot


def test_curves_draw_no_line_for_an_arm_absent_from_a_panel(epochs):
    split = pd.concat([epochs.assign(model="fc"), epochs[epochs["method"] == "sgd"].assign(model="cnn")])
    fig = curves_figure(split, "val_acc", "method", within=["model"])
    cnn, fc = fig.axes
    assert [t.get_text() for t in cnn.get_legend().get_texts()] == ["sgd (n=4)"]
    assert len(fc.get_legend().get_texts()) == 3
    sgd = [line.get_color() for ax in fig.axes for line in ax.get_lines() if line.get_label() == "sgd (n=4)"]
    assert sgd == ["C1", "C1"]  # sgd keeps its colour, its place among all arms (rbd, sgd, single), in both panels


def test_accuracies_are_drawn_in_percent_with_the_unit_on_the_axis(runs):
    from seedbench.analysis.units import in_display_units

    frame, label = in_display_units(runs, "acc")
    assert label == "acc (%)"
    fig = distribution_figure(frame, label, "method", "strip")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "acc (%)" and 45 < ax.get_ylim()[0] < ax.get_ylim()[1] < 95  # 0.5 to 0.9 drawn as 50 to 90
    loss, same = in_display_units(runs.assign(loss=runs["acc"]), "loss")
    assert same == "loss" and loss["loss"].tolist() == runs["acc"].tolist()  # losses stay as stored
