"""One training run end to end: train, test on the test cohorts, checkpoint, register, maybe activate.

This is what ``rascore train`` and the job worker call; cancellation (``should_stop``) raises
TrainingCancelled before anything is written. Under torchrun every process calls it: they train
together (rascore.train.distributed), then rank 0 alone tests, checkpoints and publishes, and the
other ranks get None back.
"""

from __future__ import annotations

from dataclasses import dataclass

from rascore.store import registry
from rascore.train.card import render_card
from rascore.train import distributed, start
from rascore.train.checkpoint import make_checkpoint, plain
from rascore.train.config import TrainConfig
from rascore.train.evaluation import TEST_COHORTS, evaluate_model
from rascore.train.loop import FitResult, ProgressFn, StopFn, fit, load_data
from rascore.train.shift import build_reference, reference_entry
from rascore.train.versions import Published, publish


@dataclass
class TrainOutcome:
    """What a run produced: the registered version, whether it became active, its figures."""

    published: Published
    metrics: dict
    fit: FitResult

    def summary(self) -> dict:
        """Plain dict for --json output and job rows."""
        p = self.published
        return plain(
            {
                "modality": p.modality,
                "version": p.version,
                "model_version_id": p.model_version_id,
                "activated": p.activated,
                "path": str(p.path),
                "card": str(p.card_path),
                **self.metrics,
            }
        )


def run_training(
    project,
    config: TrainConfig,
    *,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    activate: str = "if-better",
    job_id: int | None = None,
    user_id: int | None = None,
    test_cohorts: tuple[str, ...] = TEST_COHORTS,
    n_boot: int = 1000,
    baseline: bool = False,
) -> TrainOutcome | None:
    """Train ``config.modality`` on the current reference labels and publish the result.

    The PD-only colour rule is left to ``rascore evaluate`` unless ``baseline`` (it does not
    depend on the network and costs about a second per ten clips). Under torchrun the process
    group lasts for the training only; ranks other than 0 return None.
    """
    config = start.resolve(project, config)  # SGS@3 -> that version's checkpoint file
    config = start.adopt_source_network(config)  # fine-tune the source's width and pooling
    with distributed.session(config.device) as env:
        data = load_data(project, config)
        result = fit(config, data, on_progress if env.is_main else None, should_stop)
    if not env.is_main:
        return None
    if should_stop is not None and should_stop():
        from rascore.train.loop import TrainingCancelled

        raise TrainingCancelled("training cancelled")
    device = str(distributed.local_device(config.device, env))
    reference = build_reference(result.model, data, device)
    evaluation = evaluate_model(
        project,
        result.model,
        data.prep,
        config.modality,
        test_cohorts,
        device=device,
        n_boot=n_boot,
        baseline=baseline,
        shift=reference,
    )
    metrics = {
        "validation": result.validation,
        "training": {
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "seconds": result.seconds,
            "stopped_early": result.stopped_early,
            "world_size": result.extra.get("world_size", 1),
            "backend": result.extra.get("backend"),
            "item_sources": data.snapshot.get("item_sources"),
            "start_from": start.start_record(result.pretrained),
            # joint crop or full-frame fallback per training and validation item (rascore.train.roi)
            "crops": {
                "train": data.snapshot.get("train_crops"),
                "validation": data.snapshot.get("val_crops"),
            },
        },
        "test": evaluation.report,
    }
    result.model.to("cpu")
    checkpoint = make_checkpoint(
        result.model,
        modality=config.modality,
        prep=data.prep,
        args=config.to_dict(),
        metrics=metrics,
        snapshot=data.snapshot,
        pretrained=result.pretrained,
        history=result.history,
        prior=result.extra.get("prior"),
        shift=reference_entry(reference),
        arch_options={"width": config.net_width, "pooling": config.pooling},
    )
    published = publish(
        project,
        checkpoint,
        lambda version: render_card(checkpoint, version),
        activate=activate,
        job_id=job_id,
        user_id=user_id,
    )
    registry.save_predictions(project.store, published.model_version_id, evaluation.predictions)
    return TrainOutcome(published, checkpoint["metrics"], result)
