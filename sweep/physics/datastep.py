"""The data step of a sweep: check a grid's simulation parameters, and make its dataset when it
is missing. The CLI hands these to the submit stage (which does not know the simulator) and to
the grid validator (which does not either)."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError, NotFoundError
from ..core.gridspec import GridSpec
from ..core.names import SweepPaths
from .simulate import SimulationParams


def check_params(params: dict) -> None:
    """Validate simulation parameters (a grid's data.simulate.params).

    Raises:
        ParameterError: (a ValueError) naming the parameter and what it must be.
    """
    SimulationParams.from_dict(params)


def read_params_file(path: Path | None) -> dict:
    """The simulation parameters of a YAML file (--params), validated; {} for None.

    Raises:
        InputError: the file is unreadable, not YAML, or holds invalid parameters (named).
    """
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
        SimulationParams.from_dict(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None
    return data


def ensure_dataset(spec: GridSpec, progress: bool = True, transferred: bool = True) -> str | None:
    """Simulate the grid's dataset if it is missing and the grid says how (data.simulate), then,
    when the jobs receive their data by transfer (`transferred`: HTCondor; and data.transfer is
    not false), write the arrays its model's jobs read into jobs/<sweep>/data/, the file HTCondor
    transfers to each job.

    Returns:
        A note saying what was simulated or cut, or None when nothing was written.

    Raises:
        NotFoundError: the file is missing and the grid has no data.simulate.
        InputError: the dataset is not a readable dataset file.
    """
    made = _simulate_if_missing(spec, progress)
    # a job that fetches the dataset from data.url needs no cut of it
    cut = _model_file(spec) if spec.data.transfer and transferred and not spec.data.url else None
    notes = [n for n in (made, cut) if n]
    return "; ".join(notes) or None


def _model_file(spec: GridSpec) -> str | None:
    from .datasets import write_model_file

    target = SweepPaths(spec.root or Path.cwd()).transfer_data(spec.name, spec.data.path, spec.model)
    done = write_model_file(spec.data.path, spec.model, target)
    if not done["written"]:
        return None
    return (f"each job transfers the {spec.model} arrays of {spec.data.path_text}: {done['size'] / 1e6:.1f} MB "
            f"of {done['source_size'] / 1e6:.1f} MB ({target.name})")


def _simulate_if_missing(spec: GridSpec, progress: bool) -> str | None:
    if spec.data.path.is_file():
        return None
    if not spec.data.simulate:
        raise NotFoundError(f"dataset {spec.data.path_text} ({spec.data.path}) does not exist; create it with "
                            "`sweep data simulate` or add data.simulate to the grid")
    from .datasets import simulate_to_file

    sim = spec.data.simulate
    summary = simulate_to_file(spec.data.path, sim["waveforms"], sim["seed"], sim["params"], progress=progress)
    return (f"simulated {spec.data.path_text}: {summary.get('n_waveforms')} waveforms, "
            f"{summary.get('n_windows')} windows in {summary.get('seconds', 0):.1f}s")


def require_model(label: str, path: Path | None) -> None:
    """A model file given on the command line must exist.

    Raises:
        NotFoundError: naming it (`label`: "peak model", "cluster model").
    """
    if path is not None and not path.is_file():
        raise NotFoundError(f"{label} not found: {path}")
