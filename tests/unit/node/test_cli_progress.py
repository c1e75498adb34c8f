"""Progress as a person reads it (issue 21): a bar on a terminal, each training step drawn
once; clean lines in a log (no carriage returns), a line per milestone, no state twice."""

from __future__ import annotations

import io
from types import SimpleNamespace

from node.cli.sidecar_grpc import shown_training
from node.progress import Progress, progress_over


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def train_events(steps: int) -> list[SimpleNamespace]:
    """A sidecar's Train stream as the client yields it: a progress event per step, the
    attribution and save phases, then the result."""
    events = [SimpleNamespace(step=s, total_steps=steps, loss=1.0 / s, phase="train") for s in range(1, steps + 1)]
    events += [SimpleNamespace(step=steps, total_steps=steps, loss=0.5, phase=phase)
                for phase in ("attribution", "save")]
    return [*events, SimpleNamespace(adapter_id="a1")]


def test_training_in_a_log_is_clean_lines_each_state_once():
    log = io.StringIO()
    result = shown_training(train_events(20), "training", stream=log)
    assert result.adapter_id == "a1"
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == len(set(lines)), lines  # no state twice
    # a line per tenth of the steps and per phase, not per step
    assert lines[0] == "training: 1/20 step (5%), loss=1.000, phase=train"
    assert "training: 10/20 step (50%), loss=0.100, phase=train" in lines
    assert lines[-2:] == ["training: 20/20 step (100%), loss=0.500, phase=attribution",
                          "training: 20/20 step (100%), loss=0.500, phase=save"]
    assert len(lines) <= 10 + 2 + 1


def test_training_on_a_terminal_draws_each_step_at_most_once():
    """The old bar called set_postfix (which draws) and then refresh (which draws again):
    every step was written twice."""
    tty = Terminal()
    shown_training(train_events(3), "training", stream=tty)
    draws = tty.getvalue().split("\r")
    assert len(draws) > 2  # a live bar
    for step in ("1/3", "2/3"):
        assert sum(step in d for d in draws) <= 1, draws
    assert "3/3" in draws[-1] and "phase=save" in draws[-1]


def test_unknown_totals_and_bytes_read_plainly():
    log = io.StringIO()
    for _ in progress_over(iter(range(3)), "contributions", "file", stream=log):
        pass
    assert log.getvalue().splitlines() == ["contributions: 1 file", "contributions: 3 file"]
    log = io.StringIO()
    with Progress("weights", "B", total=3 * 2**20, stream=log, unit_scale=True) as bar:
        for _ in range(3):
            bar.advance(2**20)
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines()[-1] == "weights: 3.15MB/3.15MB (100%)"
