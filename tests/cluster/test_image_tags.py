"""cluster/tools/image_tags.py: every tag of our images found, set and checked; the
placeholder refused (install-argocd.sh --image-tag runs it: tests/cluster/bats)."""

from __future__ import annotations

import shutil

from cluster_helpers import REPO, load_tool

tags = load_tool("image_tags")
SHA = "0123456789abcdef0123456789abcdef01234567"


def test_every_image_of_ours_has_its_tag_in_one_of_the_places():
    found = tags.tags()
    text = " ".join(found)
    for name in ("mlflow", "serving", "ui", "data-api"):
        assert f"cluster/apps/{name}/base/" in text, found
    assert "helm-values/airflow/values.yaml" in found
    assert "cluster/apps/pipeline/base/pipeline.env" in found
    for tag in {t for ts in found.values() for t in ts}:  # a SHA, or git's placeholder
        assert tag == tags.PLACEHOLDER or tags.problem(tag) is None, tag


def test_set_writes_the_tag_everywhere_and_check_then_passes(tmp_path):
    for part in ("cluster", "helm-values"):
        shutil.copytree(REPO / part, tmp_path / part)
    changed = tags.set_tag(SHA, tmp_path)
    assert len(changed) == len(tags.tags(tmp_path)) >= 6
    assert {t for ts in tags.tags(tmp_path).values() for t in ts} == {SHA}
    assert tags.set_tag(SHA, tmp_path) == []  # idempotent


def test_the_placeholder_and_non_sha_tags_are_refused(capsys):
    assert tags.problem(SHA) is None
    assert "placeholder" in tags.problem(tags.PLACEHOLDER)
    assert "not a 40-hex" in tags.problem("latest")
    assert tags.main(["set", tags.PLACEHOLDER]) == 1
    assert "placeholder" in capsys.readouterr().err
