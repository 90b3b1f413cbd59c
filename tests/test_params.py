"""params.yaml as users get it wrong: every mistake is one line naming the key, from the CLI and Snakemake."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from csalic.cli import main
from helpers import REPO, base_params, write_params


def _edit(path, key, value):
    p = copy.deepcopy(base_params())
    node = p
    *parents, last = key.split("/")
    for k in parents:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return write_params(path, p)


CASES = [
    ("unknown top-level key", "lambda", [0.01], "unknown key 'lambda'"),
    ("unknown nested key", "train/learning_rate", 1e-4, "unknown key 'train/learning_rate'"),
    ("wrong type", "train/batch_size", "eight", "'train/batch_size'"),
    ("λ not positive", "lambdas", [0.001, 0], "'lambdas/1'"),
    ("λ negative", "lambdas", [-0.01], "'lambdas/0'"),
    ("empty variant list", "variants", [], "'variants'"),
    ("unknown variant", "variants", ["full", "fancy"], "'variants/1'"),
    ("duplicate λ", "lambdas", [0.001, 0.001], "'lambdas'"),
    ("missing section", "train", KeyError, "'train'"),
    ("bad init setting", "train/init", "chain", "'train/init'"),
    ("warm-up λ not positive", "train/warmup_lambda", 0, "'train/warmup_lambda'"),
    ("crop not a multiple of 16", "train/crop", 100, "'train/crop'"),
    ("unknown mode", "mode", "full", "'mode'"),
]


@pytest.mark.parametrize("what,key,value,expected", CASES, ids=[c[0] for c in CASES])
def test_schema_errors_name_the_key(tmp_path, capsys, what, key, value, expected):
    bad = _edit(tmp_path / "params.yaml", key, value)
    assert main(["prepare-data", "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "results").exists()


def test_yaml_that_would_build_objects_is_refused_and_not_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    (tmp_path / "params.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert main(["prepare-data", "--params", str(tmp_path / "params.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err and not marker.exists()


@pytest.mark.parametrize("text,expected", [("study: [unclosed\n", "not valid YAML"),
                                           ("- a list\n", "must hold a mapping"),
                                           ("", "must hold a mapping")])
def test_malformed_files(tmp_path, capsys, text, expected):
    (tmp_path / "params.yaml").write_text(text)
    assert main(["prepare-data", "--params", str(tmp_path / "params.yaml")]) == 2
    assert expected in capsys.readouterr().err
    assert main(["prepare-data", "--params", str(tmp_path / "absent.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_snakemake_validates_with_the_same_schema(tmp_path):
    for name in ("Snakefile", "workflow"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    _edit(tmp_path / "params.yaml", "lambdas", [0.001, -1])
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "lambdas" in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_paper_mode_names_what_is_missing_and_where_it_goes(tmp_path, capsys):
    p = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    merged = base_params() | p
    merged["data"] = dict(merged["data"], coco_root=str(tmp_path / "coco"))
    write_params(tmp_path / "paper.yaml", merged)
    assert main(["prepare-data", "--params", str(tmp_path / "paper.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "coco") in err, err
