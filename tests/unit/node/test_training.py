"""The training service's own rules (node/training.py), without a sidecar: a recipe means one
thing or is refused; the queue holds at most ``max_jobs`` jobs and one per builder; finished
records expire and are capped; the runner reports a job's failure on the job and goes on to the
next. The sidecar calls are stand-ins here (a unit test of one part); the real sidecar runs in
tests/integration/ai/test_train.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from eth_utils import keccak

from genesis import dev_genesis
from node.chain.assembly import assemble
from node.errors import InvalidInput, LimitExceeded, Refused
from node.training import (
    FAILED,
    MAX_RECIPE_BYTES,
    QUEUED,
    REGISTERED,
    TRAINING,
    Plan,
    TrainingJob,
    TrainingService,
    parse_recipe,
)
from node.worker import ChainWorker
from state import Ledger, MemoryStore

KEY = b"\x07" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_job(service: TrainingService, builder: int, n: int = 0, deadline: int = 2**40) -> TrainingJob:
    request = {"builder": builder.to_bytes(20, "big"), "validator": service.address, "parent_id": 1,
               "datanet_ids": [1], "datanet_versions": [1], "hyper_params_hash": keccak(text="{}"),
               "license": "", "max_fee": 1, "nonce": n, "deadline": deadline, "chain_id": 1}
    plan = Plan(keccak(text=f"job {builder} {n}"), (), b"\x00" * 32, b"\x11" * 32, 0)
    return TrainingJob(request, b"", b"{}", 0, {}, plan, 1, service.clock())


# -- the recipe --------------------------------------------------------------------------------


def test_the_clis_recipe_parses() -> None:
    text = json.dumps({"seed": 3, "rank": 8, "epochs": 5, "learning_rate": 0.01,
                       "target_modules": ["q_proj", "v_proj"]}, sort_keys=True)
    seed, hyper = parse_recipe(text)
    assert seed == 3
    assert hyper == {"rank": 8, "epochs": 5, "learning_rate": 0.01, "target_modules": ["q_proj", "v_proj"]}
    assert parse_recipe("{}") == (0, {})
    assert parse_recipe('{"alpha": 16, "dropout": 0}')[1] == {"alpha": 16.0, "dropout": 0.0}


@pytest.mark.parametrize("text,reason", [
    ("", "not one JSON object"),
    ("not json", "not one JSON object"),
    ("[1, 2]", "not a JSON object"),
    ('"seed"', "not a JSON object"),
    ('{"seed": 1, "seed": 2}', "a key is repeated"),
    ('{"learning_rate": NaN}', "NaN is not a number"),
    ('{"alpha": Infinity}', "Infinity is not a number"),
    ('{"rank": true}', "rank must be an integer"),
    ('{"rank": 8.0}', "rank must be an integer"),
    ('{"rank": 0}', "rank must be an integer in [1, 256]"),
    ('{"epochs": 201}', "epochs must be an integer in [1, 200]"),
    ('{"seed": -1}', "seed must be an integer"),
    ('{"seed": 9223372036854775808}', "seed must be an integer"),
    ('{"learning_rate": 0}', "learning_rate must be a number in (0.0, 1.0]"),
    ('{"dropout": 1}', "dropout must be a number"),
    ('{"loss_threshold": "0.3"}', "loss_threshold must be a number"),
    ('{"target_modules": "q_proj"}', "target_modules must be"),
    ('{"target_modules": ["q_proj", "q_proj"]}', "target_modules must be"),
    ('{"target_modules": ["../../etc"]}', "target_modules must be"),
    ('{"target_modules": [1]}', "target_modules must be"),
    (json.dumps({"target_modules": [f"m{i}" for i in range(17)]}), "target_modules must be"),
    ('{"base_model": "another"}', "'base_model' is not a training hyper-parameter"),
    ('{"rank": {"nested": 1}}', "rank must be an integer"),
    ("[" * 5000, "longer than 4096 bytes"),
    ("[" * 4000, "not one JSON object"),  # deep nesting: refused, never a crash
    ('{"x": "' + "a" * MAX_RECIPE_BYTES + '"}', "longer than"),
])
def test_a_hostile_recipe_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_recipe(text)
    assert reason in info.value.message, info.value.message


# -- the queue and the records -------------------------------------------------------------------


def test_at_most_max_jobs_and_one_per_builder() -> None:
    service = TrainingService("127.0.0.1:9", KEY, price=1, max_jobs=3, clock=Clock())
    jobs = [make_job(service, b) for b in (1, 2, 3)]
    assert [service.admit(j) for j in jobs] == [0, 1, 2]
    assert [service.position(j) for j in jobs] == [0, 1, 2]
    with pytest.raises(LimitExceeded, match="3 training jobs in hand, its most"):
        service.admit(make_job(service, 4))
    jobs[0].fail("done", service.clock())
    with pytest.raises(LimitExceeded, match="one at a time"):
        service.admit(make_job(service, 2, n=1))  # builder 2 still has one queued
    with pytest.raises(InvalidInput, match="being trained already"):
        service.check_capacity(jobs[1].builder, jobs[1].id)
    assert service.admit(make_job(service, 1, n=1)) == 2  # builder 1's first job is over: a place freed
    assert len(service.active()) == 3


def test_a_failed_request_may_be_sent_again() -> None:
    service = TrainingService("127.0.0.1:9", KEY, price=1, clock=Clock())
    job = make_job(service, 1)
    service.admit(job)
    job.fail("the sidecar was down", service.clock())
    again = make_job(service, 1)
    assert again.id == job.id
    service.admit(again)
    assert service.get(job.id) is again and len(service.jobs) == 1


def test_finished_records_expire_and_are_capped() -> None:
    clock = Clock()
    service = TrainingService("127.0.0.1:9", KEY, price=1, max_jobs=2, max_records=4, record_ttl=60, clock=clock)
    finished = []
    for b in range(1, 7):
        job = make_job(service, b)
        service.admit(job)
        job.status, job.finished = REGISTERED, clock()
        finished.append(job)
        clock.now += 1
    # six finished, four kept: the oldest two went first
    assert [j.id for j in service.jobs.values()] == [j.id for j in finished[2:]]
    running = make_job(service, 9)
    service.admit(running)
    running.status = TRAINING
    clock.now += 61
    assert service.get(finished[-1].id) is None  # past its ttl
    assert list(service.jobs.values()) == [running]  # an active job never expires
    assert running.to_json()["queuePosition"] is None and running.to_json()["status"] == TRAINING
    running.loss = float("nan")  # a diverging run: the record stays valid JSON
    assert json.loads(json.dumps(running.to_json(), allow_nan=False))["loss"] is None


# -- the runner -------------------------------------------------------------------------------


class FailingSidecar(TrainingService):
    """A sidecar that refuses every training; which jobs reached it."""

    def _train(self, job: TrainingJob, contributions: list[tuple[bytes, bytes]], timeout: float) -> Any:
        self.seen = [*getattr(self, "seen", []), job.id]
        raise Refused(f"the sidecar's training failed: no model for job {job.request['nonce']}")


def test_the_runner_reports_each_failure_on_its_job_and_goes_on() -> None:
    core = assemble(Ledger(MemoryStore(), dev_genesis(accounts=1))).core
    worker = ChainWorker("unit-chain")
    service = FailingSidecar("127.0.0.1:9", KEY, price=1)
    now = core.now()
    late = make_job(service, 1, n=1, deadline=now + 10)  # its deadline leaves no time to start
    first = make_job(service, 2, n=2)
    second = make_job(service, 3, n=3)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.run, core, worker)
            for job in (late, first, second):
                service.admit(job)
            with trio.fail_after(10):
                while any(j.active for j in (late, first, second)):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        worker.stop()
    assert late.status == FAILED and late.error == "the request's deadline came before the job could start"
    assert first.status == FAILED and first.error == "the sidecar's training failed: no model for job 2"
    assert second.status == FAILED and "job 3" in (second.error or "")
    assert service.seen == [first.id, second.id]  # the late job never reached the sidecar
    assert all(j.finished is not None for j in (late, first, second))
    assert service.active() == [] and QUEUED not in {j.status for j in service.jobs.values()}
