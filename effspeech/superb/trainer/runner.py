"""The training and evaluation loops. S3PRL's Runner is not reused because it runs any non-fine-tuned
upstream under no_grad (adapters need gradients through it), saves the whole args Namespace and every
upstream weight, and cannot resume mid-epoch; the loop below keeps its records/log_records protocol."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from tensorboardX import SummaryWriter
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from effspeech.count import count_parameters
from effspeech.errors import ConfigError, EffspeechError
from effspeech.frozen import frozen_cut
from effspeech.superb import records
from effspeech.superb.records import TrainingState
from effspeech.superb.tasks import get_task
from effspeech.superb.trainer import distributed
from effspeech.superb.trainer.bad_data import BadDataLog, guarded_loader
from effspeech.superb.trainer.config import adapter_plan, finetune_lr, save_yaml
from effspeech.superb.trainer.experiment import Experiment
from effspeech.superb.trainer.metrics import MetricTap
from effspeech.superb.trainer.optim import build_optimizer, build_scheduler
from effspeech.superb.trainer.pipeline import build_pipeline, count_trainable, load_trained, param_groups
from effspeech.superb.trainer.precision import autocast, compile_upstream, grad_scaler
from effspeech.superb.trainer.preemption import PREEMPTED, Preempted, StopRequest
from effspeech.superb.trainer.rng import rng_state, seed_everything, set_rng_state
from effspeech.superb.trainer.sampling import epoch_loader

LOG_NAME = "run.log"
MAX_BAD_STEPS = 5  # runner.max_bad_steps: non-finite steps in a row before the run stops


class DivergedError(EffspeechError, FloatingPointError):
    """``runner.max_bad_steps`` optimizer steps in a row had a non-finite loss or gradient."""


@dataclass
class Session:
    """One ``-m train`` invocation: optimizer, progress, and what accumulates between logs and for results."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    trainable: list[torch.nn.Parameter]
    progress: dict[str, Any]  # step, epoch, batch_in_epoch, wall_time: what a checkpoint resumes from
    writer: MetricTap | None  # None on DDP ranks > 0
    out: TextIO  # where the tqdm bars go (devnull on ranks > 0)
    started: float
    start_step: int
    backward_steps: int = 0
    records: defaultdict = field(default_factory=lambda: defaultdict(list))
    batch_ids: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    best_names: set[str] = field(default_factory=set)
    bad_loss: bool = False  # a micro-batch of the coming optimizer step had a non-finite loss
    nonfinite_steps: int = 0  # optimizer steps skipped for a non-finite loss or gradient
    nonfinite_in_a_row: int = 0
    stop_signal: str | None = None  # a stop signal seen by any DDP rank at the last optimizer step
    saved_step: int | None = None  # the step of the newest states-*.ckpt this session wrote
    scaler: torch.amp.GradScaler | None = None  # --precision fp16

    @staticmethod
    def fresh_progress() -> dict[str, Any]:
        return {"step": 0, "epoch": 0, "batch_in_epoch": 0, "wall_time": 0.0}


class Runner:
    """One experiment: the pipeline built from its args/config (or checkpoint), trained or evaluated."""

    def __init__(self, experiment: Experiment) -> None:
        self.args, self.config, self.state = experiment.args, experiment.config, experiment.state
        self.resuming = experiment.resume
        self.expdir = Path(self.args.expdir)
        self.task = get_task(self.args.downstream)
        self.log = _file_logger(self.expdir / LOG_NAME)
        self.bad_data = BadDataLog(self.config["runner"].get("on_bad_data", "stop"))
        training = self.args.mode == "train" and distributed.is_leader()
        self.progress_file = records.ProgressWriter(self.expdir) if training else None  # -m evaluate: no record
        self.stop = StopRequest()
        if self.task.prepare is not None:
            self.task.prepare(self.expdir, distributed.rank())

        spec, self.rates = adapter_plan(self.args.adapter, self.config)
        if self.args.past_exp:  # resume/evaluate: what was trained, hyperparameters and all (-i keeps its own)
            spec = self.state.adapter_spec
        self.pipeline, self.adapters = build_pipeline(self.args, self.config, spec)
        if self.state is not None:
            self._load_weights(self.state)
        self.trainable = count_trainable(self.pipeline)
        self._log_frozen_part()
        if self.args.compile:
            compile_upstream(self.pipeline.upstream, self.log)
        predictor = self.task.predictor  # what effspeech predict needs besides tensors: label names, dictionary
        self.task_info = predictor.describe(self.pipeline.downstream, self.config) if predictor else None
        self.log.info(
            "task %s, upstream %s, adapter %s, trainable %s",
            self.task.name,
            self.args.upstream,
            self.spec,
            self.trainable,
        )
        if self.args.verbose and distributed.is_leader():
            print(self.pipeline)

    def _log_frozen_part(self) -> None:
        if self.args.cache_frozen and not self.args.frozen_eval:
            message = (
                "--cache-frozen ignored: this checkpoint was trained with the frozen part computed batched, "
                "as S3PRL does; a cache computes it per clip (docs/tasks.md). Retrain with --cache-frozen to use one"
            )
            self.log.warning(message)
            if distributed.is_leader():
                print(f"[Runner] - {message}", file=sys.stderr)
        if not self.args.frozen_eval:
            return
        frozen = self.pipeline.frozen
        cut = frozen.cut if frozen is not None else frozen_cut(self.pipeline.upstream)
        how = "cached" if frozen is not None and frozen.store is not None else "per clip, not cached"
        message = f"frozen part: {cut.point} ({cut.reason}), {how}" if cut.point else f"nothing cached: {cut.reason}"
        self.log.info(message)
        if distributed.is_leader():
            print(f"[Runner] - {message}", file=sys.stderr)

    @property
    def spec(self) -> dict[str, Any]:
        return self.adapters.spec if self.adapters is not None else {}

    # ----------------------------------------------------------------------------------------- state
    def _load_weights(self, state: TrainingState) -> None:
        saved_task = state.args.get("downstream")
        if saved_task != self.args.downstream:
            raise ConfigError(f"checkpoint holds a {saved_task!r} head; this run is {self.args.downstream!r}")
        load_trained(state, self.pipeline.upstream, self.adapters)
        self.pipeline.featurizer.load_state_dict(state.featurizer)
        self.pipeline.downstream.load_state_dict(state.downstream)

    def _states(self, session: Session, rng: list[dict[str, Any]]) -> TrainingState:
        """Everything a resume needs and nothing frozen: adapters (or, under -f, the upstream), featurizer,
        head, optimizer, scheduler, progress, RNG of every rank, args and config."""
        progress = session.progress
        upstream = None
        if self.args.upstream_trainable:
            upstream = {name: p.detach() for name, p in self.pipeline.upstream.named_parameters() if p.requires_grad}
        return TrainingState(
            step=progress["step"],
            epoch=progress["epoch"],
            batch_in_epoch=progress["batch_in_epoch"],
            wall_time=progress["wall_time"],
            nonfinite_steps=session.nonfinite_steps,
            args=vars(self.args).copy(),
            config=self.config,
            adapter_spec=self.spec,
            adapter_state=self.adapters.state_dict() if self.adapters else {},
            featurizer=self.pipeline.featurizer.state_dict(),
            downstream=self.pipeline.downstream.state_dict(),
            optimizer=session.optimizer.state_dict(),
            rng=rng,
            world_size=distributed.world_size(),
            upstream=upstream,
            scheduler=None if session.scheduler is None else session.scheduler.state_dict(),
            task_info=self.task_info,
            grad_scaler=None if session.scaler is None else session.scaler.state_dict(),
        )

    def _run_info(self) -> records.RunInfo:
        return records.RunInfo(
            task=self.task.name,
            task_alias=self.task.alias,
            upstream=self.args.upstream,
            upstream_ckpt=self.args.upstream_ckpt,
            adapter=self.spec,
            upstream_trainable=bool(self.args.upstream_trainable),
            trainable_params=self.trainable,
            expdir=str(self.expdir),
        )

    # -------------------------------------------------------------------------------------- training
    def train(self) -> records.TrainRecord | None:
        """S3PRL's loop (gradient accumulation, clipping, log/eval/save steps, records + log_records),
        resumable mid-epoch, with DDP over the whole pipeline when launched by torchrun."""
        with self.stop.listening():  # from here on a stop signal saves and ends the run (preemption.py)
            session = self._open_session()
            model = self.pipeline
            if distributed.world_size() > 1:  # device_ids=None: inputs are already on the device
                model = DistributedDataParallel(self.pipeline, find_unused_parameters=True)
            total = self.config["runner"]["total_steps"]
            pbar = tqdm(total=total, initial=session.progress["step"], desc="overall", dynamic_ncols=True,
                        file=session.out)  # fmt: skip
            try:
                self.pipeline.set_train()
                while session.progress["step"] < total:
                    self._train_epoch(model, session, pbar)
            finally:  # a run stopped by an error does not leave its bar to be drawn at exit
                pbar.close()
            return self._close_session(session)

    def _open_session(self) -> Session:
        if self.config["runner"].get("fp16"):
            raise ConfigError("runner.fp16 (S3PRL's AMP switch) is not supported by effspeech's runner: remove it")
        leader = distributed.is_leader()
        if leader:
            save_yaml(vars(self.args), self.expdir / f"args_{_time_tag()}.yaml")
            save_yaml(self.config, self.expdir / f"config_{_time_tag()}.yaml")
        total = self.config["runner"]["total_steps"]
        groups = param_groups(
            self.pipeline, self.adapters, self.config["optimizer"]["lr"], self.rates, finetune_lr(self.config)
        )
        optimizer = build_optimizer(groups, total, self.config["optimizer"])
        scheduler = build_scheduler(optimizer, total, self.config.get("scheduler"))
        progress = self._resume(optimizer, scheduler) if self.resuming else Session.fresh_progress()
        self.log.info(
            "optimizer groups: %s",
            [(g["name"], g["lr"], count_parameters(g["params"])) for g in optimizer.param_groups],
        )
        writer = MetricTap(SummaryWriter(str(self.expdir))) if leader else None
        session = Session(
            optimizer=optimizer,
            scheduler=scheduler,
            trainable=[p for group in groups for p in group["params"]],
            progress=progress,
            writer=writer,
            out=sys.stderr if leader else open(os.devnull, "w"),  # closed in _close_session
            started=time.time(),
            start_step=progress["step"],
            scaler=grad_scaler(self.args.device, self.args.precision),
        )
        if self.resuming:
            session.nonfinite_steps = self.state.nonfinite_steps
            if session.scaler is not None and self.state.grad_scaler:
                session.scaler.load_state_dict(self.state.grad_scaler)
        if leader and self.resuming:  # keep what the earlier sessions measured, up to the resumed step
            writer.history, session.loss_curve = records.earlier_training(self.expdir, progress["step"])
            if not session.loss_curve and progress["step"] >= self.config["runner"]["log_step"]:
                self.log.warning("results.json has no training record before step %d", progress["step"])
        return session

    def _train_epoch(self, model: torch.nn.Module, session: Session, pbar: tqdm) -> None:
        """Train from the session's place in its epoch to the epoch's end or the last step."""
        runner_config, progress = self.config["runner"], session.progress
        accumulate = runner_config.get("gradient_accumulate_steps", 1)
        split = runner_config.get("train_dataloader", "train")
        base = guarded_loader(self.pipeline.downstream.get_dataloader(split), self.task.salvage)
        skip = progress["batch_in_epoch"]
        loader = epoch_loader(base, self.args.seed, progress["epoch"], skip)
        bar = tqdm(loader, desc="train", dynamic_ncols=True, file=session.out)
        for batch_id, (wavs, *others) in self.bad_data.batches(bar, start=skip):
            wavs = [torch.as_tensor(np.asarray(wav), dtype=torch.float32).to(self.args.device) for wav in wavs]
            session.backward_steps += 1
            synced = session.backward_steps % accumulate == 0
            with contextlib.nullcontext() if synced or model is self.pipeline else model.no_sync():
                with autocast(self.args.device, self.args.precision):
                    loss = model(split, wavs, *others, records=session.records)
                scaled = loss / accumulate
                (session.scaler.scale(scaled) if session.scaler else scaled).backward()
            session.losses.append(loss.item())
            session.bad_loss |= not math.isfinite(session.losses[-1])
            session.batch_ids.append(batch_id)
            progress["batch_in_epoch"] = batch_id + 1
            if not synced:
                continue
            self._optimizer_step(session)
            pbar.update(1)
            self._report_progress(progress["step"])
            self._log_train(session, split, total_batches=len(base))
            self._checkpoint_boundary(session)
            if session.stop_signal is not None:
                self._stop_on_signal(session)
            if progress["step"] >= runner_config["total_steps"]:
                return
        progress["epoch"] += 1
        progress["batch_in_epoch"] = 0

    def _optimizer_step(self, session: Session) -> None:
        scaler = session.scaler
        if scaler is not None:
            scaler.unscale_(session.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(session.trainable, self.config["runner"]["gradient_clipping"])
        overflow = not math.isfinite(grad_norm)  # under fp16 the scaler skips that step and lowers its scale
        bad = "loss" if session.bad_loss else ("gradient" if overflow and scaler is None else "")
        flags = distributed.gather((bad, self.stop.signal))  # every DDP rank skips and stops alike
        bad = next((what for what, _ in flags if what), "")
        session.stop_signal = next((name for _, name in flags if name), None)
        session.bad_loss = False
        if bad:
            self._skip_nonfinite_step(session, bad)
        elif scaler is not None:
            session.nonfinite_in_a_row = 0
            scaler.step(session.optimizer)
        else:
            session.nonfinite_in_a_row = 0
            session.optimizer.step()
        if scaler is not None:
            scaler.update()
        session.optimizer.zero_grad()
        if session.scheduler is not None:
            session.scheduler.step()
        session.progress["step"] += 1

    def _skip_nonfinite_step(self, session: Session, what: str) -> None:
        """Skip an update whose loss or gradient is NaN/inf; ``runner.max_bad_steps`` in a row stop the run."""
        step = session.progress["step"] + 1
        session.nonfinite_steps += 1
        session.nonfinite_in_a_row += 1
        limit = int(self.config["runner"].get("max_bad_steps", MAX_BAD_STEPS))
        message = f"non-finite {what} at step {step}: update skipped ({session.nonfinite_steps} so far)"
        self.log.warning(message)
        tqdm.write(f"[Runner] - WARNING: {message}", file=session.out)
        if session.nonfinite_in_a_row >= limit:
            first = step - session.nonfinite_in_a_row + 1
            stop = (
                f"steps {first}..{step}: non-finite {what} {session.nonfinite_in_a_row} steps in a row "
                f"(runner.max_bad_steps={limit}), run stopped. Likely cause: a learning rate too high "
                f"(optimizer.lr, adapter.<method>.lr: {self.rates}) or fp16 overflow; check the data too "
                "(effspeech check-data)"
            )
            self.log.error(stop)
            if distributed.is_leader():  # the counter reaches results.json even though the run stops
                self._write_train_results(session)
            raise DivergedError(stop)

    def _log_train(self, session: Session, split: str, total_batches: int) -> None:
        """Every ``log_step``: the recipe's ``log_records`` on the leader, and the mean loss to run.log."""
        step = session.progress["step"]
        if step % self.config["runner"]["log_step"] == 0 and distributed.is_leader():
            self.pipeline.downstream.log_records(
                split,
                records=session.records,
                logger=session.writer,
                global_step=step,
                batch_ids=session.batch_ids,
                total_batch_num=total_batches,
            )
            session.loss_curve.append({"step": step, "loss": float(np.mean(session.losses))})
            rates = [group["lr"] for group in session.optimizer.param_groups]
            self.log.info("step %d loss %.4f lr %s", step, session.loss_curve[-1]["loss"], rates)
        if step % self.config["runner"]["log_step"] == 0 or not distributed.is_leader():
            session.records, session.batch_ids, session.losses = defaultdict(list), [], []

    def _report_progress(self, step: int, phase: str = "train", force: bool = False) -> None:
        """progress.json, for whoever watches the run (the leaderboard's status, the demo's bar)."""
        if self.progress_file is not None:
            self.progress_file.update(step, self.config["runner"]["total_steps"], phase, force)

    def _checkpoint_boundary(self, session: Session) -> None:
        """At ``eval_step``/``save_step``/the last step: evaluate, save what the recipe and ``save_step`` ask
        for, and refresh results.json. RNG states are taken first, so a resume replays from here."""
        runner_config, progress = self.config["runner"], session.progress
        step = progress["step"]
        if session.stop_signal is not None:  # stopping: save now (_stop_on_signal), no evaluation first
            return
        at_eval, at_save = step % runner_config["eval_step"] == 0, step % runner_config["save_step"] == 0
        if not (at_eval or at_save or step == runner_config["total_steps"]):
            return
        rng = distributed.gather(rng_state())
        progress["wall_time"] = self._wall_time(session.started)
        if not distributed.is_leader():
            return
        names = []
        if at_eval:
            for split in runner_config["eval_dataloaders"]:
                names += self.evaluate(split, session.writer, step)
            session.best_names.update(names)
        if at_save:
            names.append(records.states_name(step))
            session.saved_step = step
        if names:
            states = self._states(session, rng)
            for name in names:
                records.save_state(states, self.expdir / name)
                tqdm.write(f"[Runner] - Save the checkpoint to: {self.expdir / name}", file=session.out)
                self.log.info("saved %s", self.expdir / name)
        if at_save:
            records.prune_states(self.expdir, runner_config["max_keep"])
        self._write_train_results(session)

    def _stop_on_signal(self, session: Session) -> None:
        """Save ``states-<step>.ckpt`` (unless this step's save just wrote it) and results.json, then stop."""
        step = session.progress["step"]
        path = self.expdir / records.states_name(step)
        rng = distributed.gather(rng_state())
        session.progress["wall_time"] = self._wall_time(session.started)
        if distributed.is_leader():
            if session.saved_step != step:
                records.save_state(self._states(session, rng), path)
                records.prune_states(self.expdir, self.config["runner"]["max_keep"])
            self._write_train_results(session, interrupted={"signal": session.stop_signal, "step": step})
            self.log.warning("stopped on %s at step %d: %s", session.stop_signal, step, path)
            session.writer.close()
        distributed.barrier()
        raise Preempted(
            f"stopped on {session.stop_signal} at step {step}, saved in {path}; resume with -a "
            f"(exit status {PREEMPTED}: requeue the job)"
        )

    def _close_session(self, session: Session) -> records.TrainRecord | None:
        digests = distributed.gather(self.trainable_digest())
        if not distributed.is_leader():
            session.out.close()
            return None
        session.writer.close()
        record = self._write_train_results(session, digests)
        self._report_progress(session.progress["step"], force=True)
        self.log.info("training done: %d steps in %.1f s", session.progress["step"], session.progress["wall_time"])
        return record

    def _resume(self, optimizer, scheduler) -> dict[str, Any]:
        state = self.state
        if state.world_size != distributed.world_size():
            raise ConfigError(
                f"checkpoint was trained on {state.world_size} processes, this run has "
                f"{distributed.world_size()}: resume with the same world size"
            )
        optimizer.load_state_dict(state.optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
        set_rng_state(state.rng[distributed.rank()])
        self.log.info("resumed at step %d (epoch %d, batch %d)", state.step, state.epoch, state.batch_in_epoch)
        return {
            "step": state.step,
            "epoch": state.epoch,
            "batch_in_epoch": state.batch_in_epoch,
            "wall_time": state.wall_time,
        }

    def _wall_time(self, session_start: float) -> float:
        previous = self.state.wall_time if self.resuming else 0.0
        return previous + time.time() - session_start

    def _write_train_results(
        self, session: Session, digests: list[str] | None = None, interrupted: dict[str, Any] | None = None
    ) -> records.TrainRecord:
        progress = session.progress
        record = records.TrainRecord(
            steps=progress["step"],
            total_steps=self.config["runner"]["total_steps"],
            resumed_from_step=session.start_step or None,
            wall_time_s=round(progress["wall_time"], 3),
            world_size=distributed.world_size(),
            metrics=session.writer.latest(),
            history=session.writer.history,
            train_loss=session.loss_curve,
            best_checkpoints=sorted(session.best_names),
            nonfinite_steps_skipped=session.nonfinite_steps,
            bad_data=self.bad_data.summary(),
            trainable_digest_per_rank=digests,
            interrupted=interrupted,
            frozen=self._frozen_summary(),
            precision=self.args.precision,
        )
        records.write_results(self.expdir, record, self._run_info())
        return record

    def _frozen_summary(self) -> dict[str, Any] | None:
        return self.pipeline.frozen.summary() if self.pipeline.frozen is not None else None

    def trainable_digest(self) -> str:
        """SHA-1 over every trainable tensor: equal on all DDP ranks iff they hold the same weights."""
        digest = hashlib.sha1()
        for name, parameter in sorted(self.pipeline.named_parameters()):
            if parameter.requires_grad:
                digest.update(name.encode())
                digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(self, split: str, writer: MetricTap, step: int) -> list[str]:
        """One pass over ``split`` with a fixed seed (the same protocol at every step, as in S3PRL), without
        disturbing the training RNG; returns the checkpoint names the recipe asks to save."""
        training = self.pipeline.downstream.training
        self.pipeline.eval()
        self._report_progress(step, f"evaluate {split}", force=True)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
            seed_everything(self.args.seed)
            loader = guarded_loader(self.pipeline.downstream.get_dataloader(split), self.task.salvage)
            limit = round(len(loader) * float(self.config["runner"].get("evaluate_ratio", 1)))
            records, batch_ids = defaultdict(list), []
            bar = tqdm(loader, desc=split, total=limit, dynamic_ncols=True)
            with torch.no_grad():
                for batch_id, (wavs, *others) in self.bad_data.batches(bar):
                    if batch_id >= limit:
                        break
                    wavs = [torch.as_tensor(np.asarray(w), dtype=torch.float32).to(self.args.device) for w in wavs]
                    with autocast(self.args.device, self.args.precision):
                        self.pipeline(split, wavs, *others, records=records, batch_id=batch_id)
                    batch_ids.append(batch_id)
            names = self.pipeline.downstream.log_records(
                split,
                records=records,
                logger=writer,
                global_step=step,
                batch_ids=batch_ids,
                total_batch_num=len(loader),
            )
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if training:  # back to training: the modes set_train chose (a frozen part stays in eval)
            self.pipeline.set_train()
        self.log.info("eval %s at step %d: %s", split, step, writer.latest().get(split, {}))
        return list(names) if isinstance(names, list) else []

    def evaluate_checkpoint(self) -> records.EvaluateRecord:
        """``-m evaluate -e CKPT``: the checkpoint's upstream + adapters + head on the task's test split."""
        split = self.args.evaluate_split or self.task.test_split
        writer = MetricTap(None)
        start = time.time()
        self.evaluate(split, writer, self.state.step)
        record = records.EvaluateRecord(
            checkpoint=self.args.init_ckpt,
            step=self.state.step,
            split=split,
            wall_time_s=round(time.time() - start, 3),
            metrics=writer.latest(),
            bad_data=self.bad_data.summary(),
            frozen=self._frozen_summary(),
        )
        records.write_results(self.expdir, record, self._run_info())
        return record


def _file_logger(path: Path) -> logging.Logger:
    """A plain-text log of the run next to S3PRL's TensorBoard files and the recipe's own log.log."""
    logger = logging.getLogger(f"effspeech.superb.trainer.{path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if distributed.is_leader() and not logger.handlers:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


def _time_tag() -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S")
