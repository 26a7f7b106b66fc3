import shutil
import subprocess
import sys

import pytest
import torch

from helpers import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory):
    """A small archive in the Imagenette layout, made by the demo generator."""
    from cnnstudy.data.demo_archive import write_demo_archive

    path = tmp_path_factory.mktemp("archive") / "imagenette-demo.tgz"
    return write_demo_archive(path, name="imagenette-demo", seed=1, train_per_class=12, val_per_class=4)


@pytest.fixture(scope="session")
def demo_dataset(demo_archive, tmp_path_factory):
    from cnnstudy.data.download import unpack_dataset

    return unpack_dataset(
        demo_archive, "imagenette-demo", tmp_path_factory.mktemp("datasets") / "imagenette-demo"
    )


@pytest.fixture(scope="session")
def prepared(demo_dataset, tmp_path_factory):
    """Prepared tensors at 16 px: enough to train the small CNN for a few steps."""
    from cnnstudy.data.prepare import prepare

    output = tmp_path_factory.mktemp("data")
    prepare(
        demo_dataset, output, image_size=16, validation_fraction=0.25, seed=0, skip_corrupt=False, threads=2,
        source={"name": "imagenette-demo", "archive_md5": "test-archive-md5"},
    )  # fmt: skip
    return output


@pytest.fixture()
def dataset_copy(demo_dataset, tmp_path):
    copy = tmp_path / "imagenette-demo"
    shutil.copytree(demo_dataset, copy)
    return copy


def run_snakemake(*arguments, cwd=REPO, check=True, timeout=900):
    """Snakemake itself, as a user runs it; returns the completed process (stdout and stderr merged)."""
    result = subprocess.run(
        [*SNAKEMAKE, *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(arguments)} failed:\n{result.stdout[-6000:]}")
    return result


@pytest.fixture(autouse=True)
def _restore_torch_settings():
    """Training switches on deterministic algorithms and sets threads; keep tests independent."""
    threads = torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory):
    """One small offline demo run to the end in a copy of the workflow, shared by the tests that edit it
    and put it back (dry runs, or a failed change and its revert): (folder, config-file arguments).
    Tests using it must leave it finished (``Nothing to be done``)."""
    from helpers.workflow import DEMO, TWO_EPOCHS, copy_workflow, planned_jobs, with_overrides

    workflow = copy_workflow(tmp_path_factory.mktemp("finished-demo"))
    configs = with_overrides(workflow, TWO_EPOCHS, demo=True)
    run_snakemake(*DEMO, *configs, cwd=workflow)
    assert planned_jobs(run_snakemake(*DEMO, *configs, "-n", cwd=workflow).stdout) == {}
    return workflow, configs
