"""Where the pinned charts and schemas come from (cluster/tools/vendor.py): the checks stop with one
line without them; `make vendor` fetches them."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error

import pytest
from check_helpers import (
    vendor,
)

pytestmark = pytest.mark.usefixtures("vendored")


def test_without_vendored_charts_the_checks_stop_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nothing"))
    with pytest.raises(vendor.VendorMissing) as caught:
        vendor.root()
    assert "make vendor" in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.delenv("SHARED_DIR")
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(vendor, "REPO", tmp_path / "repo")
    with pytest.raises(vendor.VendorMissing):
        vendor.root()
    (tmp_path / "cache/charts").mkdir(parents=True)
    (tmp_path / "cache/schemas/crds").mkdir(parents=True)
    with pytest.raises(vendor.VendorMissing):  # a download cut short is not a cache
        vendor.root()
    (tmp_path / "cache" / vendor.COMPLETE).write_text("")
    assert vendor.root() == tmp_path / "cache"  # the cache wins over ../shared


def _chart_tgz(chart: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = f"apiVersion: v2\nname: {chart}\nversion: 1\n".encode()
        info = tarfile.TarInfo(f"{chart}/Chart.yaml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upstream(fetched: list[str], charts: list[tuple[str, str, str]], fail_on: str = ""):
    """A stand-in for the chart repositories and raw schema files: ``fetch(url) -> bytes``."""
    crd = (vendor.schemas_dir() / "crds-raw/metallb/metallb.io_ipaddresspools.yaml").read_bytes()

    def fetch(url: str) -> bytes:
        fetched.append(url)
        if fail_on and fail_on in url:
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        if url.endswith("index.yaml"):
            entries = {c: [{"version": v, "urls": [f"{c}-{v}.tgz"]}] for _, c, v in charts}
            return json.dumps({"entries": entries}).encode()
        if url.endswith(".tgz"):
            return _chart_tgz(url.rsplit("/", 1)[1].rsplit("-", 1)[0])
        return crd if url.endswith(".yaml") else b"{}"

    return fetch


def test_vendor_download_fetches_pinned_charts_and_derives_crd_schemas(tmp_path):
    fetched: list[str] = []
    written = vendor.download(tmp_path, upstream(fetched, vendor.pinned_charts()))
    assert any(w.startswith("charts/airflow-") for w in written)
    assert (tmp_path / "charts/traefik-41.3.0/Chart.yaml").is_file()
    assert (tmp_path / "schemas/crds/metallb.io/ipaddresspool_v1beta1.json").is_file()
    assert any("raw.githubusercontent.com/metallb/metallb/791dfcc" in u for u in fetched)
    assert (
        vendor.chart_url(
            "https://x.io/charts",
            "a",
            "1",
            {"entries": {"a": [{"version": "1", "urls": ["a-1.tgz"]}]}},
        )
        == "https://x.io/charts/a-1.tgz"
    )
    assert (tmp_path / vendor.COMPLETE).is_file()


def test_make_test_fetches_the_charts_only_when_none_are_found_and_says_so(
    tmp_path, monkeypatch, capsys
):
    charts = [("https://charts.example.org/stable", "airflow", "1.2.3")]
    fetched: list[str] = []
    offline = upstream(fetched, charts, fail_on="raw.githubusercontent.com")
    online = upstream(fetched, charts)
    monkeypatch.delenv("SHARED_DIR", raising=False)
    monkeypatch.setattr(vendor, "REPO", tmp_path / "repo")  # no ../shared beside it
    monkeypatch.setattr(vendor, "CACHE", tmp_path / "repo/.cache/vendor")
    monkeypatch.setattr(vendor, "pinned_charts", lambda: charts)

    assert vendor.ensure(offline) == 1
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "fetching 1 pinned Helm charts" in out
    assert "charts.example.org" in out and "raw.githubusercontent.com" in out
    assert err.count("\n") == 1 and "Name or service not known" in err and "make vendor" in err
    with pytest.raises(vendor.VendorMissing):  # half a download is not used
        vendor.root()

    assert vendor.ensure(online) == 0
    assert vendor.root() == tmp_path / "repo/.cache/vendor"
    assert (vendor.CACHE / "charts/airflow-1.2.3/Chart.yaml").is_file()
    fetched.clear()
    assert vendor.ensure(online) == 0  # found: nothing fetched again
    assert fetched == []
    assert capsys.readouterr().out.startswith("charts and schemas: ")

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nothing"))
    assert vendor.ensure(online) == 1 and fetched == []
    assert "SHARED_DIR" in capsys.readouterr().err
