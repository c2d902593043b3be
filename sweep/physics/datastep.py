"""The data step of a sweep: check a grid's simulation parameters, and make its dataset when it
is missing. The CLI hands these to the submit stage (which does not know the simulator) and to
the grid validator (which does not either)."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError, NotFoundError
from ..core.grid import GridSpec
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


def ensure_dataset(spec: GridSpec, progress: bool = True) -> str | None:
    """Simulate the grid's dataset if it is missing and the grid says how (data.simulate).

    Returns:
        A note saying what was simulated, or None when the file was already there.

    Raises:
        NotFoundError: the file is missing and the grid has no data.simulate.
    """
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
