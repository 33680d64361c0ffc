"""The lossboard tab in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) on a real ``tensorboard`` serving runs over seeds.

It waits for the chart, counts its curves and bands, reads the table and checks it against
``lossboard.compare_groups`` on the same root, sorts it, opens a configuration's runs, hovers,
switches to the dark theme and resizes, and saves screenshots under ``tmp_path``. Without
Chromium the test is skipped, except under ``CI=true``, where it fails: CI must run it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time

import pytest
from seeded import write_seeded_runs
from tensorboard_process import serve

import lossboard

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
#: The table shows 4 decimals (compare's ``fmt`` and ``spread``): its text is within this.
TEXT_TOLERANCE = 5.1e-5


def _browser(width: int, height: int):
    if CHROMIUM is None or DRIVER is None:
        missing = "chromium" if CHROMIUM is None else "chromedriver (chromium-driver)"
        message = f"{missing} not found: apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: the browser test must run; {message}")
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--disable-background-networking")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_window_size(width, height)
    return driver


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    write_seeded_runs(root)
    yield from serve(root, 2 * 2 * 3, str(root))


def _wait(condition, timeout: float = 60.0, what: str = "the dashboard"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not there yet (stale, missing, still loading)
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _open(driver, base: str):
    """Opens #lossboard and switches into the plugin's iframe once its table is drawn."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/#lossboard")
    frame = _wait(
        lambda: driver.find_element(By.CSS_SELECTOR, 'iframe[src*="name=lossboard"]'),
        what="the plugin's iframe",
    )
    driver.switch_to.frame(frame)
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#lb-table tbody tr"), what="the table")
    return driver.find_element(By.CSS_SELECTOR, "svg.lb-chart")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?", text)]


def test_chart_and_table_equal_compare_groups(served, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    base, root = served
    want = lossboard.compare_groups(lossboard.load(root), over="seed")
    driver = _browser(1400, 1000)
    try:
        svg = _open(driver, base)
        # one curve and one band per configuration and split that has values
        splits = [s for s in ("train", "val") if f"{s} epochs" in want.columns]
        expected = sum(
            1 for _, row in want.iterrows() for s in splits if not math.isnan(row[f"{s} epochs"])
        )
        assert int(svg.get_attribute("data-curves")) == expected == 5
        assert len(driver.find_elements(By.CSS_SELECTOR, "g.curve")) == expected
        assert int(svg.get_attribute("data-bands")) == expected
        dashed = driver.find_elements(By.CSS_SELECTOR, 'g.curve[data-split="validation"]')
        assert len(dashed) == 2  # the run without hparams has no validation values
        legend = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".lb-legend-item")]
        assert legend == [
            f"{c} (n={n})" for c, n in zip(want.configuration, want.runs, strict=True)
        ]

        rows = driver.find_elements(By.CSS_SELECTOR, "#lb-table tbody tr")
        assert [r.get_attribute("data-config") for r in rows] == want.configuration.tolist()
        header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#lb-table th")]
        for row, (_, expected_row) in zip(rows, want.iterrows(), strict=True):
            for td, name in zip(row.find_elements(By.TAG_NAME, "td"), header, strict=True):
                key = td.get_attribute("data-key")
                if key is None:
                    continue
                value = expected_row[key]
                if isinstance(value, float):  # the full-precision number behind the cell
                    got = float(td.get_attribute("data-value"))
                    assert got == value or (math.isnan(got) and math.isnan(value)), (name, key)
                    shown = _numbers(td.text)
                    if math.isnan(value):
                        assert td.text.strip() in ("-", "nan"), (name, td.text)
                    elif key.endswith(" mean") and shown:  # "mean [ci low, ci high]"
                        assert abs(shown[0] - value) <= TEXT_TOLERANCE, (name, td.text, value)
                        if len(shown) > 1:  # the 95% interval, when the column shows it
                            stem = key[: -len("mean")]
                            for got_, end in zip(shown[1:], ("ci low", "ci high"), strict=True):
                                want_ = expected_row[stem + end]
                                assert abs(got_ - want_) <= TEXT_TOLERANCE, (name, td.text, end)
                    else:  # a p-value, an hparam, epochs (a float column when a row lacks them)
                        assert abs(shown[0] - value) <= TEXT_TOLERANCE, (name, td.text, value)
                else:  # runs, epochs ("3 (3-4)": common, then fewest-most), words
                    assert td.text.split()[0] == str(value), (name, td.text, value)
        driver.save_screenshot(str(tmp_path / "dashboard-1400x1000.png"))

        # the statistics of compare --over are there, each column backed by its number
        assert {"val final iqm", "p best better"} <= set(header)
        # sorting: by val final, ascending then descending, configurations without it last
        column = header.index("val final")
        driver.find_elements(By.CSS_SELECTOR, "#lb-table th")[column].click()
        order = want.sort_values("val final mean", na_position="last").configuration.tolist()
        assert _row_names(driver) == order
        driver.find_elements(By.CSS_SELECTOR, "#lb-table th")[column].click()
        descending = want.sort_values("val final mean", ascending=False, na_position="last")
        assert _row_names(driver) == descending.configuration.tolist()

        # a click on a configuration shows its runs as thin lines; a second click hides them
        row = driver.find_element(By.CSS_SELECTOR, '#lb-table tbody tr[data-config="lr=0.1"]')
        row.click()
        _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "path.member")) == 6)
        runs = {
            p.get_attribute("data-run")
            for p in driver.find_elements(By.CSS_SELECTOR, "path.member")
        }
        assert runs == {f"lr=0.1-seed{s}" for s in range(3)}
        driver.save_screenshot(str(tmp_path / "dashboard-members.png"))

        # hover: the read-out names the epoch, the means and the spread
        chart = driver.find_element(By.CSS_SELECTOR, "rect.lb-catcher")
        ActionChains(driver).move_to_element_with_offset(
            chart, -chart.size["width"] // 2 + 3, 0
        ).perform()
        tip = _wait(
            lambda: driver.find_element(By.CSS_SELECTOR, ".lb-tip").text, what="the hover read-out"
        )
        assert tip.startswith("epoch 0") and "lr=0.01 train (n=3):" in tip and "±" in tip

        driver.find_element(By.CSS_SELECTOR, '#lb-table tbody tr[data-config="lr=0.1"]').click()
        _wait(lambda: not driver.find_elements(By.CSS_SELECTOR, "path.member"))
    finally:
        driver.quit()


def _row_names(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#lb-table tbody tr")
    return [r.get_attribute("data-config") for r in rows]


@pytest.mark.parametrize(("width", "height", "dark"), [(1000, 700, False), (1400, 1000, True)])
def test_readable_small_and_in_the_dark_theme(served, tmp_path, width, height, dark):
    from selenium.webdriver.common.by import By

    base, _ = served
    driver = _browser(width, height)
    try:
        if dark:  # TensorBoard follows the browser's theme by default
            driver.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
        svg = _open(driver, base)
        inner = driver.execute_script("return document.documentElement.clientWidth")
        assert 0 < svg.size["width"] <= inner
        assert svg.size["height"] >= 240
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= inner + 1, "the page scrolls sideways"
        is_dark = driver.execute_script(
            "return document.documentElement.classList.contains('lb-dark')"
        )
        assert is_dark is dark
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(32, 33, 36)") is dark
        assert driver.find_elements(By.CSS_SELECTOR, "g.curve")
        driver.save_screenshot(
            str(tmp_path / f"dashboard-{width}x{height}-{'dark' if dark else 'light'}.png")
        )
    finally:
        driver.quit()
