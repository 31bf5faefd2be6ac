"""The site selector in a real browser (headless Chromium, the session's
browser of test_console_browser.py): HR chooses "all sites" on the
reports page of site-a, sees both sites' numbers, and downloads the CSV
that `dnswarden report --central` prints. The screenshot goes beside
the console's others ($DNSWARDEN_TEST_OUTPUT/console-screenshots)."""

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from test_console_browser import (browser, download_csv, login,  # noqa: F401
                                  no_console_errors, shot, wait)
from test_console_central import cli, sites  # noqa: F401


def report_cells(drv):
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in drv.find_elements(By.CSS_SELECTOR, "table.report tbody tr")]


def test_hr_chooses_all_sites(browser, sites):  # noqa: F811
    drv = browser
    a, _ = sites
    login(drv, a, "hr1")
    drv.get(a.url + "/reports?by=instance")
    wait(drv, EC.presence_of_element_located((By.ID, "sites")))
    # This site by default: site-a's own row only.
    assert report_cells(drv) == [["site-a", "40", "2", "0", "40"]]
    Select(drv.find_element(By.ID, "sites")).select_by_visible_text("all sites")
    drv.find_element(By.CSS_SELECTOR, "form.filter button[type=submit]").click()
    wait(drv, lambda d: "sites=all" in d.current_url)
    assert Select(drv.find_element(By.ID, "sites")).first_selected_option.text == "all sites"
    assert report_cells(drv) == [["site-a", "40", "2", "0", "40"],
                                 ["site-b", "20", "1", "0", "20"]]
    no_console_errors(drv)
    shot(drv, "reports-all-sites")
    # The CSV link carries the choice: the CLI's --central report.
    files = download_csv(drv)
    assert files[0].read_bytes() == cli(a.dw, "report", "--central", "--by", "instance",
                                        "--format", "csv")
