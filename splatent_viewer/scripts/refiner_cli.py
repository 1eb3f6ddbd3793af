"""``splatent-refiner``: build the refiner's dataset, train a refiner on it, evaluate it, adapt it to a scene.

    splatent-refiner make-dataset --scenes DIR [DIR ...] --procedural 4 --output data/refiner
    splatent-refiner train --dataset data/refiner --output outputs/refiner --steps 2000 [--guided]
    splatent-refiner eval --dataset data/refiner --refiner outputs/refiner/refiner --ks 0 3 --output table.md
    splatent-refiner adapt --load-config RUN [--max-seconds 180]     # the run's own training views only

Data parallel training: ``accelerate launch -m splatent_viewer.scripts.refiner_cli train ...``.
"""

from __future__ import annotations

from typing import Annotated, Union

import tyro
from rich.console import Console

from splatent_viewer.errors import exit_on_error
from splatent_viewer.refiner_training.adapt import AdaptConfig
from splatent_viewer.refiner_training.build_dataset import MakeDatasetConfig
from splatent_viewer.refiner_training.evaluate import RefinerEvalConfig
from splatent_viewer.refiner_training.train import RefinerTrainConfig

CONSOLE = Console()

Command = Union[
    Annotated[MakeDatasetConfig, tyro.conf.subcommand("make-dataset")],
    Annotated[RefinerTrainConfig, tyro.conf.subcommand("train")],
    Annotated[RefinerEvalConfig, tyro.conf.subcommand("eval")],
    Annotated[AdaptConfig, tyro.conf.subcommand("adapt")],
]


def main(command: MakeDatasetConfig | RefinerTrainConfig | RefinerEvalConfig | AdaptConfig) -> object:
    """Runs one subcommand; returns its result (dataset path, train result, eval rows or adaptation result)."""
    if isinstance(command, AdaptConfig):
        from splatent_viewer.refiner_training.adapt import adapt_refiner

        return adapt_refiner(command)
    if isinstance(command, MakeDatasetConfig):
        from splatent_viewer.refiner_training.build_dataset import make_dataset

        return make_dataset(command)
    if isinstance(command, RefinerTrainConfig):
        from splatent_viewer.refiner_training.train import train_refiner

        return train_refiner(command)
    from splatent_viewer.refiner_training.evaluate import run_eval

    return run_eval(command)


def entrypoint(args: list[str] | None = None) -> None:
    """CLI entry point."""
    command = tyro.cli(Command, args=args, description=__doc__.splitlines()[0] if __doc__ else None)
    exit_on_error(main, command)


if __name__ == "__main__":
    entrypoint()
