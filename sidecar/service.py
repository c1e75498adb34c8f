"""The gRPC edge: maps sidecar calls onto training and serving, and typed errors onto status codes.

Health checking (grpc.health.v1) reports SERVING once the base model is loaded, and
server reflection lists the service, so grpcurl and similar tools work without the proto.

Adapters move between sidecars as their three artifacts (`sidecar.artifacts`):
ExportAdapter streams them from the store, ImportAdapter receives them bounded, checks
every hash, the base model and each artifact's content, and stores them like a trained
adapter (a merge only once it rebuilds from the parents it names). Verify re-runs a receipt's
pinned inputs; Retrain trains again from a manifest; Merge merges held adapters.
"""

from __future__ import annotations

import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sidecar import sidecar_pb2 as pb
from sidecar import sidecar_pb2_grpc as pb_grpc
from sidecar.artifacts import (
    CHUNK_BYTES,
    MAX_MERGE_PARENTS,
    ArtifactKind,
    ArtifactReceiver,
    Manifest,
    adapter_folder_name,
    check_base,
    check_index,
    check_weights,
    file_keccak,
    keccak_hex,
    new_temp_folder,
    normalize_hash,
    profile_differences,
    store_adapter,
)
from sidecar.config import SidecarConfig, TrainHyperParams
from sidecar.errors import (
    AdapterNotFound,
    AlreadyExists,
    EngineUnavailable,
    Incompatible,
    IntegrityError,
    InvalidArgument,
    QueueFull,
    RequestNotFound,
    SidecarError,
)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Sidecar"].full_name

_CODES = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    AdapterNotFound: grpc.StatusCode.NOT_FOUND,
    RequestNotFound: grpc.StatusCode.NOT_FOUND,
    QueueFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    EngineUnavailable: grpc.StatusCode.UNAVAILABLE,
    IntegrityError: grpc.StatusCode.DATA_LOSS,
    Incompatible: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
}
MAX_EXPECTED_ATTRIBUTIONS = 1024
"""Most (contribution, basis points) pairs a Verify request may carry."""
MAX_PROFILE_BYTES = 64 * 1024
"""Largest engine profile a Verify request may carry (ours is under 1 KiB)."""


def _abort(context: grpc.ServicerContext, e: SidecarError) -> Any:
    code = next((c for t, c in _CODES.items() if isinstance(e, t)), grpc.StatusCode.INTERNAL)
    context.abort(code, str(e))


def hyper_params_from_proto(m: pb.HyperParams) -> TrainHyperParams:
    """Proto fields left at zero/empty take the defaults; others are validated later."""
    d = TrainHyperParams()
    return TrainHyperParams(
        rank=m.rank or d.rank,
        alpha=m.alpha or d.alpha,
        dropout=m.dropout or d.dropout,
        target_modules=tuple(m.target_modules) or d.target_modules,
        learning_rate=m.learning_rate or d.learning_rate,
        epochs=m.epochs or d.epochs,
        max_length=m.max_length or d.max_length,
        batch_size=m.batch_size or d.batch_size,
        weight_decay=m.weight_decay or d.weight_decay,
        projection_dim=m.projection_dim or d.projection_dim,
        loss_threshold=m.loss_threshold or d.loss_threshold,
    )


def infer_response(r: Any, decode: Any) -> pb.InferResponse:
    """The proto of an InferResult; `decode` turns token ids into bytes (span texts)."""
    out = pb.InferResponse(
        request_id=r.request_id,
        adapter_id=r.adapter_id,
        output=r.output,
        output_hash=r.output_hash,
        tokens=r.tokens,
        prompt_tokens=r.prompt_tokens,
        timing=pb.Timing(
            queue_ms=r.queue_ms, generate_ms=r.generate_ms,
            attribution_ms=r.attribution_ms, batch_size=r.batch_size,
        ),
    )
    if r.attribution is not None:
        out.attribution.extend(
            pb.ContributionWeight(contribution_id=c, basis_points=bp) for c, bp in r.attribution.weights
        )
        out.attribution_confidence = r.attribution.confidence
        out.owed_nats = r.attribution.owed_nats
        toks = r.tokens
        for s, e, ids in r.attribution.spans:
            out.spans.append(pb.SpanMatch(start=s, end=e, text=decode(list(toks[s:e])), contribution_ids=list(ids)))
    return out


class SidecarService(pb_grpc.SidecarServicer):
    """Implements the Sidecar service over one base model, one engine and the store."""

    def __init__(self, cfg: SidecarConfig, log: Any = print) -> None:
        self.cfg = cfg
        self.log = log
        self.store = Path(cfg.store)
        self.store.mkdir(parents=True, exist_ok=True)
        # An adapter write cut short by a crash is a .tmp-* folder: swept before the port
        # opens, so no client ever sees one (one sidecar owns its store).
        for partial in (self.store / "adapters").glob(".tmp-*"):
            shutil.rmtree(partial, ignore_errors=True)
        self._train_lock = threading.Lock()
        self._import_slots = threading.Semaphore(cfg.serve.max_imports)
        self.trainings = 0
        self.ready = threading.Event()
        """Set once the base model and the engine are loaded (or loading failed)."""
        self.load_error: BaseException | None = None
        self.base: Any = None
        self.engine: Any = None

    def load(self, on_loaded: Callable[[], None] | None = None) -> None:
        """Load the base model and start the engine (the server already answers meanwhile);
        ``on_loaded`` runs once they are, before the calls waiting for them go on."""
        from sidecar.model import load_base, setup_torch
        from sidecar.serving import Engine

        try:
            time.sleep(self.cfg.load_delay_s)
            setup_torch(self.cfg.threads)
            self.base = load_base(self.cfg, self.log)
            self.engine = Engine(self.base, self.store, self.cfg.serve, self.log, threads=self.cfg.threads)
            if on_loaded is not None:
                on_loaded()  # before the waiting calls go on: whoever they answer sees it SERVING
        except BaseException as e:
            self.load_error = e
            raise
        finally:
            self.ready.set()

    def _wait_ready(self, context: grpc.ServicerContext) -> None:
        """Hold a call that arrives while the model loads, up to its deadline (at most 120 s)."""
        left = context.time_remaining()
        self.ready.wait(min(left if left is not None else 120.0, 120.0))
        if not self.ready.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the sidecar is still loading its base model; retry")
        if self.load_error is not None:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"the sidecar failed to load its base model: {self.load_error}")

    def _contributions(self, msgs: Any) -> list[Any]:
        """Train's contributions; a given content hash must be the data's keccak-256."""
        from sidecar.training import Contribution

        out = []
        for c in msgs:
            if c.content_hash and normalize_hash(c.content_hash, "content_hash") != keccak_hex(c.data):
                raise IntegrityError(f"contribution {c.id[:32]!r} does not hash to its content_hash {c.content_hash}")
            out.append(Contribution(c.id, c.data))
        return out

    def Train(self, request: pb.TrainRequest, context: grpc.ServicerContext) -> Iterator[pb.TrainEvent]:
        from sidecar.training import train_adapter, train_from_manifest

        self._wait_ready(context)
        try:
            contributions = self._contributions(request.contributions)
            if request.manifest:
                if request.base_model or request.hyper_params.ByteSize() or request.seed or request.datanets:
                    raise InvalidArgument("training from a manifest takes its recipe from it: leave base_model, "
                                          "hyper_params, seed and datanets unset")
                job: Callable[[Any], Any] = lambda progress: train_from_manifest(  # noqa: E731
                    self.base, self.store, request.manifest, contributions, request.adapter_id, progress)
            else:
                if request.base_model and request.base_model not in (self.base.name, self.base.weights_hash):
                    raise InvalidArgument(
                        f"base_model {request.base_model!r} is not the served base model {self.base.name!r}")
                datanets = tuple((d.datanet_id, d.version) for d in request.datanets)
                job = lambda progress: (train_adapter(  # noqa: E731
                    self.base, self.store, contributions, hyper_params_from_proto(request.hyper_params),
                    int(request.seed), request.adapter_id, progress, datanets), False)
        except SidecarError as e:
            return _abort(context, e)
        yield from self._run_training(job, context)

    def Retrain(self, request: pb.RetrainRequest, context: grpc.ServicerContext) -> Iterator[pb.TrainEvent]:
        from sidecar.training import train_from_manifest

        self._wait_ready(context)
        try:
            contributions = self._contributions(request.contributions)
        except SidecarError as e:
            return _abort(context, e)
        yield from self._run_training(lambda progress: train_from_manifest(
            self.base, self.store, request.manifest, contributions, "", progress, save=False), context)

    def Merge(self, request: pb.MergeRequest, context: grpc.ServicerContext) -> pb.MergeResponse:
        """Merge held adapters (one CPU job at a time, with training); see sidecar/merging.py."""
        from sidecar.merging import merge_adapters

        self._wait_ready(context)
        try:
            if not 2 <= len(request.parents) <= MAX_MERGE_PARENTS:
                raise InvalidArgument(f"a merge has 2 to {MAX_MERGE_PARENTS} parents, not {len(request.parents)}")
            folders = [self._held_folder(p) for p in request.parents]
            with self._train_lock:
                result, _ = merge_adapters(self.base, self.store, folders, request.method, list(request.weights_bp),
                                           request.density_bp, request.seed, request.adapter_id,
                                           save=not request.dry_run)
            if result.stored:
                self.engine.note_adapter(result.adapter_id)
        except SidecarError as e:
            return _abort(context, e)
        return pb.MergeResponse(adapter_id=result.adapter_id, weights_hash=result.weights_hash,
                                attribution_index_hash=result.attribution_index_hash,
                                manifest_hash=result.manifest_hash, base_model_hash=result.base_model_hash,
                                stored=result.stored, seconds=result.seconds)

    def _held_folder(self, ref: str) -> Path:
        """The store folder of a held adapter named by its id or its weights hash."""
        if len(ref.removeprefix("0x")) == 64:
            found = self.engine.adapter_for_weights(normalize_hash(ref, "parent weights hash"))
            if found is None:
                raise AdapterNotFound(f"this sidecar holds no adapter with weights {ref[:80]}")
            ref = found
        self.engine.adapter_meta(ref)  # AdapterNotFound for an id not in the store
        return Path(self.engine.adapter_path(ref))

    def _parent_folder(self, weights_hash: str) -> Path | None:
        found = self.engine.adapter_for_weights(weights_hash)
        return None if found is None else Path(self.engine.adapter_path(found))

    def _run_training(self, job: Callable[[Any], Any], context: grpc.ServicerContext) -> Iterator[pb.TrainEvent]:
        """Run `job(on_progress) -> (TrainResult, matches manifest)` on a thread of its own (one
        job at a time) and stream its progress, then its result."""
        events: list[pb.TrainEvent] = []
        cond = threading.Condition()
        done: list[Any] = []

        def on_progress(p: Any) -> None:
            with cond:
                events.append(pb.TrainEvent(progress=pb.TrainProgress(
                    step=p.step, total_steps=p.total_steps, epoch=p.epoch, loss=p.loss,
                    tokens_per_second=p.tokens_per_second, phase=p.phase)))
                cond.notify()

        def run() -> None:
            try:
                with self._train_lock:
                    outcome: Any = job(on_progress)
                    self.trainings += 1
                if outcome[0].stored:
                    self.engine.note_adapter(outcome[0].adapter_id)
            except BaseException as e:  # noqa: BLE001 - reported through the stream
                outcome = e
            with cond:
                done.append(outcome)
                cond.notify()

        threading.Thread(target=run, name="sidecar-train", daemon=True).start()
        sent = 0
        while True:
            with cond:
                cond.wait_for(lambda n=sent: len(events) > n or bool(done), timeout=1.0)
                pending, finished = events[sent:], list(done)
            yield from pending
            sent += len(pending)
            if finished and sent == len(events):
                break
        outcome = finished[0]
        if isinstance(outcome, SidecarError):
            _abort(context, outcome)
        if isinstance(outcome, BaseException):
            context.abort(grpc.StatusCode.INTERNAL, f"training failed: {outcome!r}")
        r, matches = outcome
        yield pb.TrainEvent(result=pb.TrainResult(
            adapter_id=r.adapter_id, weights_hash=r.weights_hash,
            attribution_index_hash=r.attribution_index_hash, base_model_hash=r.base_model_hash,
            final_loss=r.final_loss, steps=r.steps, examples=r.examples, tokens=r.tokens,
            seconds=r.seconds, manifest_hash=r.manifest_hash, matches_manifest=matches, threads=r.threads,
            environment_differences=list(r.environment_differences)))

    def _request(self, m: pb.InferRequest) -> Any:
        from sidecar.serving import InferRequest

        if m.request_id and not m.request_id.isalnum():
            raise InvalidArgument("request_id must be letters and digits only")
        return InferRequest(m.adapter_id, m.prompt, m.max_tokens, m.request_id, not m.skip_attribution)

    def Infer(self, request: pb.InferRequest, context: grpc.ServicerContext) -> pb.InferResponse:
        try:
            from sidecar.serving import wait_result

            fut = self.engine.submit(self._request(request))
            left = context.time_remaining()
            limit = self.cfg.serve.request_timeout_s
            result = wait_result(fut, min(left, limit) if left is not None else limit)
            return self._response(result)
        except SidecarError as e:
            return _abort(context, e)

    def _response(self, result: Any) -> pb.InferResponse:
        out = infer_response(result, self.base.tokenizer.decode)
        out.engine_profile = self.engine.profile
        out.engine_profile_hash = self.engine.profile_hash
        return out

    def Replay(self, request: pb.ReplayRequest, context: grpc.ServicerContext) -> pb.ReplayResponse:
        self._wait_ready(context)
        try:
            if request.request_id:
                res, old = self.engine.replay(request_id=request.request_id)
            elif request.HasField("request"):
                res, old = self.engine.replay(req=self._request(request.request))
            else:
                raise InvalidArgument("replay needs request_id or request")
        except SidecarError as e:
            return _abort(context, e)
        expected = request.expected_output_hash or old
        return pb.ReplayResponse(
            response=self._response(res), original_output_hash=expected,
            matches=bool(expected) and expected == res.output_hash,
        )

    def ListAdapters(self, request: pb.ListAdaptersRequest, context: grpc.ServicerContext) -> pb.ListAdaptersResponse:
        self._wait_ready(context)
        out = pb.ListAdaptersResponse(base_model=self.base.name, base_model_hash=self.base.weights_hash,
                                      engine_profile=self.engine.profile,
                                      engine_profile_hash=self.engine.profile_hash)
        for a in self.engine.stored_adapters():
            meta = self.engine.adapter_meta(a)
            out.adapters.append(pb.AdapterInfo(
                adapter_id=a, loaded=a in self.engine.cache, pinned=self.engine.cache.pins(a) > 0,
                weights_hash=meta["weights_hash"], attribution_index_hash=meta["attribution_index_hash"],
                contributions=len(meta["contribution_ids"]), manifest_hash=meta.get("manifest_hash", "")))
        return out

    def LoadAdapter(self, request: pb.LoadAdapterRequest, context: grpc.ServicerContext) -> pb.LoadAdapterResponse:
        self._wait_ready(context)
        try:
            hit, secs = self.engine.load(request.adapter_id, request.pin)
        except SidecarError as e:
            return _abort(context, e)
        return pb.LoadAdapterResponse(was_loaded=hit, seconds=secs)

    def UnloadAdapter(self, request: pb.UnloadAdapterRequest, context: grpc.ServicerContext) -> pb.UnloadAdapterResponse:
        self._wait_ready(context)
        try:
            self.engine.adapter_meta(request.adapter_id)
        except SidecarError as e:
            return _abort(context, e)
        return pb.UnloadAdapterResponse(was_loaded=self.engine.unload(request.adapter_id))

    def _check_profile(self, request: pb.VerifyRequest) -> None:
        """Incompatible unless the receipt's engine profile (bytes or hash) is this engine's:
        another engine may round differently, so its re-run would prove nothing."""
        own, own_hash = self.engine.profile, self.engine.profile_hash
        if len(request.engine_profile) > MAX_PROFILE_BYTES:
            raise InvalidArgument(f"engine_profile is over {MAX_PROFILE_BYTES} bytes")
        if request.engine_profile:
            if request.engine_profile_hash and normalize_hash(
                    request.engine_profile_hash, "engine_profile_hash") != keccak_hex(request.engine_profile):
                raise InvalidArgument("engine_profile_hash is not the keccak-256 of engine_profile")
            if request.engine_profile != own:
                raise Incompatible("this sidecar runs another engine profile than the receipt's, so it cannot re-run "
                                   "it: " + "; ".join(profile_differences(request.engine_profile, own)))
        elif request.engine_profile_hash:
            expected = normalize_hash(request.engine_profile_hash, "engine_profile_hash")
            if expected != own_hash:
                raise Incompatible(f"the receipt's engine profile {expected} is not this sidecar's {own_hash}, so it "
                                   "cannot re-run it (send engine_profile to see which fields differ)")

    def Verify(self, request: pb.VerifyRequest, context: grpc.ServicerContext) -> pb.VerifyResponse:
        from sidecar.attribution import VERIFY_TOLERANCE_BP, attribution_diff_bp

        self._wait_ready(context)
        try:
            self._check_profile(request)
            weights = normalize_hash(request.weights_hash, "weights_hash")
            expected_output = (normalize_hash(request.expected_output_hash, "expected_output_hash")
                               if request.expected_output_hash else "")
            if len(request.expected_attribution) > MAX_EXPECTED_ATTRIBUTIONS:
                raise InvalidArgument(f"expected_attribution holds over {MAX_EXPECTED_ATTRIBUTIONS} entries")
            expected = [(w.contribution_id, w.basis_points) for w in request.expected_attribution]
            if len({c for c, _ in expected}) != len(expected) or any(bp > 10_000 for _, bp in expected):
                raise InvalidArgument("expected_attribution must name each contribution once, at most 10000 bp")
            tolerance = request.tolerance_bp if request.HasField("tolerance_bp") else VERIFY_TOLERANCE_BP
            result = self.engine.verify(weights, request.prompt, request.max_tokens)
        except SidecarError as e:
            return _abort(context, e)
        got = result.attribution.weights if result.attribution is not None else []
        diff = attribution_diff_bp(expected, got) if expected else 0
        return pb.VerifyResponse(
            response=self._response(result),
            output_matches=bool(expected_output) and expected_output == result.output_hash,
            attribution_diff_bp=diff, attribution_matches=bool(expected) and diff <= tolerance,
            tolerance_bp=tolerance)

    def ExportAdapter(self, request: pb.ExportAdapterRequest, context: grpc.ServicerContext) -> Iterator[pb.AdapterChunk]:
        self._wait_ready(context)
        try:
            if request.adapter_id:
                adapter_id = request.adapter_id
            else:
                weights = normalize_hash(request.weights_hash, "weights_hash")
                found = self.engine.adapter_for_weights(weights)
                if found is None:
                    raise AdapterNotFound(f"this sidecar holds no adapter with weights {weights}")
                adapter_id = found
            meta = self.engine.adapter_meta(adapter_id)
            if not meta.get("manifest_hash"):
                raise Incompatible(f"adapter {adapter_id!r} was stored before adapters had manifests: "
                                   "train it again to export it")
            folder = self.engine.adapter_path(adapter_id)
            plan = [(ArtifactKind.MANIFEST, meta["manifest_hash"]), (ArtifactKind.WEIGHTS, meta["weights_hash"]),
                    (ArtifactKind.ATTRIBUTION_INDEX, meta["attribution_index_hash"])]
            for kind, want in plan:
                got = file_keccak(folder / kind.filename)
                if got != want:
                    raise IntegrityError(f"the store's {kind.label} of adapter {adapter_id!r} hashes to {got}, "
                                         f"not {want}: the store is damaged")
        except SidecarError as e:
            return _abort(context, e)
        for kind, want in plan:
            path = folder / kind.filename
            yield pb.AdapterChunk(header=pb.ArtifactHeader(kind=int(kind), hash=want, size=path.stat().st_size))
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield pb.AdapterChunk(data=chunk)

    def ImportAdapter(self, request_iterator: Iterator[pb.AdapterChunk],
                      context: grpc.ServicerContext) -> pb.ImportAdapterResponse:
        self._wait_ready(context)
        if not self._import_slots.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{self.cfg.serve.max_imports} imports are running; retry later")
        limit_s = self.cfg.serve.import_timeout_s
        watchdog = threading.Timer(limit_s, context.cancel)  # a sender that stalls is cut off
        watchdog.daemon = True
        watchdog.start()
        tmp = new_temp_folder(self.store)
        started = time.monotonic()

        def on_manifest(m: Manifest) -> None:
            check_base(m, self.base.weights_hash, self.base.name)
            m.hyper_params.validate(self.base.max_length, self.base.linear_modules)

        rx = ArtifactReceiver(tmp, self.cfg.serve.max_import_bytes, on_manifest)
        try:
            for msg in request_iterator:
                part = msg.WhichOneof("part")
                if part == "header":
                    rx.header(msg.header.kind, msg.header.hash, msg.header.size)
                elif part == "data":
                    rx.data(msg.data)
                else:
                    raise InvalidArgument("a chunk must carry a header or data")
                if time.monotonic() - started > limit_s:
                    raise InvalidArgument(f"the import took over {limit_s:.0f} s")
            manifest = rx.finish()
            return self._store_import(tmp, manifest, rx.received)
        except SidecarError as e:
            return _abort(context, e)
        finally:
            rx.close()
            watchdog.cancel()
            shutil.rmtree(tmp, ignore_errors=True)
            self._import_slots.release()

    def _store_import(self, tmp: Path, manifest: Manifest, nbytes: int) -> pb.ImportAdapterResponse:
        """Check the received weights and index against the manifest and store the adapter
        (or find it held already)."""
        manifest_hash = file_keccak(tmp / ArtifactKind.MANIFEST.filename)
        answer = pb.ImportAdapterResponse(weights_hash=manifest.weights_hash, manifest_hash=manifest_hash,
                                          attribution_index_hash=manifest.attribution_index_hash, bytes=nbytes)
        held = self.engine.adapter_for_weights(manifest.weights_hash)
        if held is not None:
            if self.engine.adapter_meta(held).get("manifest_hash") != manifest_hash:
                raise AlreadyExists(f"adapter {held!r} holds these weights with another manifest")
            answer.adapter_id, answer.already_held = held, True
            return answer
        check_weights(tmp / ArtifactKind.WEIGHTS.filename, self.base.model.config, manifest.hyper_params)
        check_index(tmp / ArtifactKind.ATTRIBUTION_INDEX.filename, manifest)
        if manifest.merge is not None:
            # a merge is rebuilt from the parents it names, never believed: one that claims a
            # parent or a recipe it was not made from is refused here (docs/merges.md)
            from sidecar.merging import check_merge

            with self._train_lock:
                check_merge(self.base, self.store, manifest, self._parent_folder)
        name = adapter_folder_name(manifest.weights_hash)
        meta = {
            "adapter_id": name, "weights_hash": manifest.weights_hash,
            "attribution_index_hash": manifest.attribution_index_hash, "manifest_hash": manifest_hash,
            "base_model_hash": manifest.base_model_hash, "base_model": manifest.base_model_name,
            "hyper_params": asdict(manifest.hyper_params),
            "seed": manifest.seed, "contribution_ids": [c.id.hex() for c in manifest.contributions],
            "origin": "imported", **({"merge": manifest.merge.to_json()} if manifest.merge is not None else {}),
        }
        answer.already_held = not store_adapter(tmp, name, manifest, meta)
        self.engine.note_adapter(name)
        answer.adapter_id = name
        return answer

    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsResponse:
        self._wait_ready(context)
        c = self.engine.cache.stats()
        s = self.engine.stats
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return pb.StatsResponse(
            cache_hits=c.hits, cache_misses=c.misses, loads=c.loads, evictions=c.evictions,
            loaded_adapters=c.loaded, adapter_bytes=c.bytes, pinned_adapters=c.pinned,
            requests=s.requests, batches=s.batches, tokens=s.tokens,
            tokens_per_second=s.tokens / s.generate_seconds if s.generate_seconds else 0.0,
            queue_depth=self.engine.queue_depth(), rejected=s.rejected, rss_bytes=rss,
            device=str(self.base.device), trainings=self.trainings,
        )


def serve(cfg: SidecarConfig, host: str, port: int, workers: int = 32, log: Any = print) -> grpc.Server:
    """Bind and start at once, then load the base model on a thread; the returned server has
    `.sidecar_port` and `.sidecar_service` (whose `ready` event is set when loading ends).

    Health says NOT_SERVING until the model is loaded, then SERVING. Calls that arrive
    meanwhile wait for the model (up to their deadline) instead of failing.
    """
    t0 = time.monotonic()
    service = SidecarService(cfg, log)
    health_servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=[
        ("grpc.max_receive_message_length", 256 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ])
    pb_grpc.add_SidecarServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.start()

    def serving() -> None:
        b = service.base
        log(f"base model {b.name} ({b.weights_hash[:16]}) on {b.device}, ready in {time.monotonic() - t0:.1f}s")
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    def load() -> None:
        try:
            service.load(serving)
        except BaseException as e:  # noqa: BLE001 - reported; health stays NOT_SERVING
            log(f"loading the base model failed: {e!r}")

    threading.Thread(target=load, name="sidecar-load", daemon=True).start()
    server.sidecar_service = service  # type: ignore[attr-defined]
    server.sidecar_port = bound  # type: ignore[attr-defined]
    return server
