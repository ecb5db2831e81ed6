"""`seedbench report --html`: one self-contained file, rendered in a real headless Chromium.

Needs the Debian package `chromium` (/usr/bin/chromium). The page is loaded with every host name
unresolvable, so anything it tried to fetch from the network would fail visibly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from seedbench.analysis.html import build_report, seed_ranges
from seedbench.cli.outputs import check_output
from seedbench.errors import ConfigError
from seedbench.store import Store
from tests.study_store import run_command, write_study_store
from tests.test_time_to_target import write_time_store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PROBE = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    const box = img.getBoundingClientRect();
    img.dataset.naturalWidth = img.naturalWidth; img.dataset.renderedWidth = Math.round(box.width);
  }
  document.body.dataset.probe = 'done';
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail("headless Chromium is needed for this test: install the Debian package `chromium`")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("html")
    store = write_study_store(
        root / "store",
        methods={"sgd": 0.90, "rbd": 0.885, "nes": 0.88},
        models=("fc", "cnn"),
        datasets=("digits", "mnist"),
        init_seeds=range(3),
        data_seeds=range(2),
    )
    out = root / "study.html"
    assert run_command(["report", "--store", str(store), "--metric", "test_acc", "--html", str(out)]) == 0
    return store, out


def test_the_report_is_one_file_without_external_resources(report):
    _, out = report
    text = out.read_text()
    assert not re.search(r"""(?i)(src|href)\s*=\s*["']?\s*(https?:|//)""", text)
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    parser = _Images()
    parser.feed(text)
    assert len(parser.images) >= 3  # box plot, performance profile, critical-difference diagram
    assert all(img["src"].startswith("data:image/png;base64,") for img in parser.images)


def test_chromium_renders_the_stores_numbers_and_every_plot(report, tmp_path):
    store, out = report
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text().replace("</body>", PROBE + "</body>"))
    result = chromium(tmp_path, "--window-size=1200,3000", "--dump-dom", probe.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-probe="done"' in dom
    parser = _Images()
    parser.feed(dom)
    assert parser.images and all(int(img["data-natural-width"]) > 0 and int(img["data-rendered-width"]) > 0 for img in parser.images)
    text = " ".join(parser.text)
    # numbers straight from the store (DuckDB), formatted as the report formats floats
    means = Store(store).query("SELECT method, avg(test_acc) AS m, count(*) AS n FROM runs WHERE status = 'finished' GROUP BY method")
    for _, row in means.iterrows():
        assert f"{100 * row['m']:.4g}" in text, row["method"]  # in percent, as everywhere in the report
    assert "holm" in text and "Nemenyi" in text and "Variance decomposition" in text
    assert f"seedbench sweep experiments/study.yaml --store {store}" in text
    assert "project git commit" in text


@pytest.fixture(scope="module")
def timed_report(tmp_path_factory) -> Path:
    """A report with --target 90 on a store whose per-epoch histories are known (tests/test_time_to_target.py)."""
    root = tmp_path_factory.mktemp("timed")
    store = write_time_store(root / "store")
    out = root / "timed.html"
    assert run_command(["report", "--store", str(store), "--metric", "test_acc", "--target", "90", "--html", str(out)]) == 0
    return out


class _Cells(HTMLParser):
    """Every table of the page as rows of cell texts, and every image with its alt text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[dict[str, str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_chromium_shows_units_the_reference_baseline_and_the_time_to_target(timed_report, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(timed_report.read_text().replace("</body>", PROBE + "</body>"))
    result = chromium(tmp_path, "--window-size=1200,3000", "--dump-dom", probe.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    page = _Cells()
    page.feed(result.stdout)
    headers = [table[0] for table in page.tables if table]
    # one unit, named: the runs table, Table 1's corner, the comparisons and the spread all say %
    assert ["val_acc (%)", "test_acc (%)"] == [h for h in headers[0] if "acc" in h]
    table1 = next(t for t in page.tables if t and t[0][0] == "task: test_acc (%)")
    # the default baseline is the reference method (sgd), though "rbd" sorts first
    assert table1[0][1:] == ["sgd", "rbd"] and all(row[1].endswith("(1)") for row in table1[1:])
    compared = next(h for h in headers if "arm_a" in h)
    assert {"mean_a (%)", "diff (%)", "diff_ci_low (%)", "mde (%)"} <= set(compared)
    pairs = next(t for t in page.tables if t and "arm_a" in t[0])
    assert all(row[pairs[0].index("arm_b")] == "sgd" for row in pairs[1:])  # the reference is B: diff = arm - sgd
    spread = next(t for t in page.tables if t and "baseline" in t[0] and "std_ratio" in t[0])
    assert {row[spread[0].index("baseline")] for row in spread[1:]} == {"sgd"} and "std (%)" in spread[0]
    # the time-to-target table, with the values worked out in tests/test_time_to_target.py
    timed = next(t for t in page.tables if t and t[0][:4] == ["model", "dataset", "arm", "reached"])
    rows = {(r[0], r[2]): dict(zip(timed[0], r)) for r in timed[1:]}
    assert rows[("fc", "sgd")]["reached"] == "5/6 (83%)" and rows[("fc", "sgd")]["epoch"] == "3.5 [2, inf]"
    assert rows[("fc", "rbd")]["seconds"] == "12 [8, inf]" and rows[("cnn", "rbd")]["epoch"] == "never"
    ratios = next(t for t in page.tables if t and "ratio" in t[0])
    assert ["fc", "digits", "rbd", "12", "5.25", "2.286"] in ratios
    # the performance profile of time to target is drawn and decodes in the browser
    profile = [img for img in page.images if "time to target" in img.get("alt", "")]
    assert len(profile) == 1 and int(profile[0]["data-natural-width"]) > 300 and int(profile[0]["data-rendered-width"]) > 0
    assert "baseline: sgd" in result.stdout and "performance profile" in result.stdout


def test_screenshot_is_not_blank_and_the_console_is_clean(report, tmp_path):
    _, out = report
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, "--window-size=1200,3000", f"--screenshot={shot}", out.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels.std() > 0.05  # text, tables and plots, not an empty page
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.01  # a visible share of dark (text/line) pixels
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert "net::ERR" not in result.stderr


@pytest.mark.parametrize(
    "name, message",
    [
        ("study.pdf", "use one of .htm, .html"),
        ("missing/study.html", "does not exist"),
        ("afile/study.html", "is a file, not a folder"),
        ("adir.html", "is a folder, not a file"),
    ],
)
def test_the_output_path_is_checked_before_the_store_is_read(tmp_path, name, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.html").mkdir()
    with pytest.raises(ConfigError) as info:
        # the store does not exist either: the path error must come first, before any work
        run_command(["report", "--store", str(tmp_path / "no-store"), "--html", str(tmp_path / name)])
    assert message in str(info.value) and "\n" not in str(info.value)
    assert check_output(tmp_path / "ok.htm", {".html", ".htm"}, "--html") == (tmp_path / "ok.htm").resolve()


def test_designs_without_decomposition_or_rank_test_say_why(tmp_path):
    store = write_study_store(
        tmp_path / "store", methods={"sgd": 0.9, "rbd": 0.89}, init_seeds=range(3), data_seeds=range(2), skip=[("sgd", 0, 1)], argv=None
    )
    runs = Store(store).query("SELECT * FROM runs")
    page = build_report(runs, "test_acc", "method", ["model", "dataset"], store_dir=store, n_resamples=200)
    assert "No variance decomposition: the design is not crossed" in page
    assert "No rank test" in page and "&gt;= 3 arms" in page
    assert "records no sweep commands" in page


def test_seed_ranges():
    assert seed_ranges([0, 1, 2, 5, 7, 8, np.nan]) == "0-2, 5, 7-8"
    assert seed_ranges([]) == "-"
