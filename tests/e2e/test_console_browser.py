"""The console in a real browser (headless Chromium through Selenium): HR
logs in, sees the chart with the numbers of a known history, downloads
the CSV and is refused the attempts page; security pages through the
attempts; admin sees the audit trail. A screenshot of every page is
saved under $DNSWARDEN_TEST_OUTPUT/console-screenshots (scripts/test.sh
sets it to its log directory) for a reviewer to look at."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import harness
from console import EXPECTED_DAYS, PASSWORDS, Console, day_start

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SAMPLE = harness.REPO / "blocklist" / "sample-sites.yaml"
EXTRA_DAYS_AGO = 4
EXTRA_ROWS = 60     # 2 minutes apart: 60 attempts, more than a page of 50
# One more attempt that day, from a client whose name is longer than a
# half-width panel's column: it must be cut short, not widen the panel.
LONG_CLIENT = "2001:db8:4a5b:6c7d:8e9f:a0b1:c2d3:e4f5"


def out_dir() -> Path:
    base = os.environ.get("DNSWARDEN_TEST_OUTPUT") or tempfile.gettempdir()
    d = Path(base) / "console-screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session, with a fresh profile."""
    profile = tempfile.mkdtemp(prefix="dnswarden-chromium-")
    downloads = tempfile.mkdtemp(prefix="dnswarden-downloads-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                           "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    drv.execute_cdp_cmd("Page.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": downloads})
    drv.downloads = Path(downloads)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)
    shutil.rmtree(downloads, ignore_errors=True)


@pytest.fixture(scope="module")
def con(nsd_shared):
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-b-"))
    d.chmod(0o755)
    extra = [(EXTRA_DAYS_AGO, i * 120, "10.0.0.9", "www.backpage.com")
             for i in range(EXTRA_ROWS)]
    extra.append((EXTRA_DAYS_AGO, EXTRA_ROWS * 120, LONG_CLIENT, "www.backpage.com"))
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE], extra=extra)
    yield c
    c.close()
    problems = c.dw.problems()
    shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems) + "\n" + c.dw.stderr()[-4000:]


def shot(drv, name):
    drv.save_screenshot(str(out_dir() / f"{name}.png"))


def wait(drv, cond, timeout=20):
    return WebDriverWait(drv, timeout).until(cond)


def login(drv, con, user):
    drv.get_log("browser")      # what an earlier test left there
    drv.delete_all_cookies()
    drv.get(con.url + "/")
    wait(drv, EC.presence_of_element_located((By.ID, "login")))
    drv.find_element(By.ID, "user").send_keys(user)
    drv.find_element(By.ID, "password").send_keys(PASSWORDS[user])
    drv.find_element(By.CSS_SELECTOR, "#login button").click()
    wait(drv, EC.presence_of_element_located((By.ID, "logout")))


def download_csv(drv):
    """Click the page's CSV link; the downloaded files."""
    for f in drv.downloads.glob("*"):
        f.unlink()
    drv.find_element(By.ID, "csv").click()
    end = time.monotonic() + 20
    files = []
    while time.monotonic() < end:
        files = [f for f in drv.downloads.glob("*.csv")]
        if files:
            break
        time.sleep(0.1)
    assert files, "no CSV downloaded"
    return files


def no_console_errors(drv):
    """CSP violations and script errors show in the browser's log."""
    try:
        logs = drv.get_log("browser")
    except Exception:
        return
    bad = [e for e in logs if e.get("level") == "SEVERE"]
    assert not bad, bad


def overflowing_panels(drv):
    """The overview's half-width panels whose table does not fit: the
    panel itself or the table's own scrolling box is wider than shown
    (a scrollbar, with a column cut off at its edge)."""
    return drv.execute_script(
        "return [...document.querySelectorAll('.cols section')]"
        ".filter(s => [s, ...s.querySelectorAll('.scroll')]"
        ".some(e => e.scrollWidth > e.clientWidth))"
        ".map(s => s.querySelector('h2').textContent)")


def test_hr_chart_csv_and_refused_attempts(browser, con):
    drv = browser
    drv.delete_all_cookies()
    drv.get(con.url + "/")
    wait(drv, EC.presence_of_element_located((By.ID, "login")))
    shot(drv, "login")
    login(drv, con, "hr1")
    # The chart, drawn by Chart.js from the page's data, has the history.
    data = wait(drv, lambda d: d.execute_script(
        "const c = window.Chart && Chart.getChart('chart');"
        "return c ? {labels: c.data.labels, values: c.data.datasets[0].data} : null;"))
    days = dict(EXPECTED_DAYS)
    days[EXTRA_DAYS_AGO] = EXTRA_ROWS + 1
    want = {time.strftime("%Y-%m-%d", time.gmtime(day_start(d) / 1000)): n
            for d, n in days.items()}
    assert dict(zip(data["labels"], data["values"])) == want
    # No single attempt and no query name for HR.
    assert drv.find_elements(By.CSS_SELECTOR, "table.attempts") == []
    assert "www.backpage.com" not in drv.page_source
    # Top sites and top clients fit their panels, every column shown.
    assert overflowing_panels(drv) == []
    no_console_errors(drv)
    shot(drv, "overview-hr")

    drv.get(con.url + "/reports?by=day&since=2000-01-01")
    wait(drv, EC.presence_of_element_located((By.ID, "csv")))
    shot(drv, "reports")
    files = download_csv(drv)
    cli = con.cli("report", "--by", "day", "--since", "2000-01-01", "--format", "csv")
    assert files[0].read_bytes() == cli.stdout

    drv.get(con.url + "/attempts")
    refused = wait(drv, EC.presence_of_element_located((By.ID, "refused")))
    assert "hr" in refused.text
    assert drv.find_elements(By.CSS_SELECTOR, "table.attempts") == []
    shot(drv, "attempts-refused-hr")


def test_security_pages_through_attempts(browser, con):
    drv = browser
    login(drv, con, "sec1")
    # Every table fits its panel and the page needs no sideways scroll;
    # a long name is cut short with an ellipsis, and its cell's title holds it.
    assert overflowing_panels(drv) == []
    assert drv.execute_script("const e = document.documentElement;"
                              "return e.scrollWidth <= e.clientWidth")
    cell = drv.find_element(By.CSS_SELECTOR, f'table.client td[title="{LONG_CLIENT}"]')
    assert cell.value_of_css_property("text-overflow") == "ellipsis"
    shot(drv, "overview-security")
    drv.get(con.url + "/attempts")
    wait(drv, EC.presence_of_element_located((By.CSS_SELECTOR, "table.attempts")))
    rows = drv.find_elements(By.CSS_SELECTOR, "table.attempts tbody tr")
    assert len(rows) == 50
    # Eleven columns scroll in the table's own box, not the whole page.
    assert drv.execute_script("const e = document.documentElement;"
                              "return e.scrollWidth <= e.clientWidth")
    # The name with a script tag is shown as text, and ran nowhere.
    assert "x<script>alert(1)</script>.backpage.com" in drv.find_element(
        By.CSS_SELECTOR, "table.attempts").text
    assert drv.execute_script("return document.querySelectorAll('td script').length") == 0
    shot(drv, "attempts")
    drv.find_element(By.ID, "older").click()
    wait(drv, EC.url_contains("before="))
    rows2 = drv.find_elements(By.CSS_SELECTOR, "table.attempts tbody tr")
    assert len(rows2) == 7 + EXTRA_ROWS + 1 - 50
    shot(drv, "attempts-older")
    # Each client links to that client's attempts.
    drv.find_element(By.CSS_SELECTOR, "a.client").click()
    wait(drv, EC.url_contains("client="))
    clients = {e.text for e in drv.find_elements(By.CSS_SELECTOR, "a.client")}
    assert len(clients) == 1
    drv.get(con.url + "/blocklist?name=www.backpage.com")
    res = wait(drv, EC.presence_of_element_located((By.ID, "lookup-result")))
    assert "blocked" in res.text and "Backpage" in res.text
    shot(drv, "blocklist")
    no_console_errors(drv)


def test_admin_status_and_audit(browser, con):
    drv = browser
    login(drv, con, "admin1")
    drv.get(con.url + "/status")
    wait(drv, EC.presence_of_element_located((By.CSS_SELECTOR, "table.counters")))
    shot(drv, "status")
    drv.get(con.url + "/audit")
    table = wait(drv, EC.presence_of_element_located((By.CSS_SELECTOR, "table.audit")))
    text = table.text
    assert "sec1" in text and "read attempts" in text and "hr1" in text
    shot(drv, "audit")
    drv.find_element(By.ID, "logout").click()
    wait(drv, EC.presence_of_element_located((By.ID, "login")))
    no_console_errors(drv)
