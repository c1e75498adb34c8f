"""The `ailedger sidecar` command (and `python -m sidecar`): flags, then start the gRPC server.

Importing this module is cheap: torch, peft and transformers load only inside `run`,
because the node imports it to build its own --help.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sidecar's flags, shared by `ailedger sidecar` and `python -m sidecar`."""
    from sidecar.config import ServeConfig

    d = ServeConfig()
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="gRPC port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--store", required=True, help="folder for the base-model cache, adapters and request journal")
    p.add_argument("--base-model-dir", default="",
                   help="a local Hugging Face causal LM folder (Llama, GPT-2, Qwen style) to serve "
                   "instead of the base model shipped with the package")
    p.add_argument("--base-cache", default="", help=argparse.SUPPRESS)  # unused: the base model ships
    p.add_argument("--test-load-delay-s", type=float, default=0.0, help=argparse.SUPPRESS)  # tests only
    p.add_argument("--cache-adapters", type=int, default=d.cache_max_adapters,
                   help="most adapters kept loaded (LRU beyond it) (default: %(default)s)")
    p.add_argument("--cache-mb", type=float, default=d.cache_max_bytes / 2**20,
                   help="memory budget of loaded adapters, MiB (default: %(default)s)")
    p.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms,
                   help="how long to wait for requests to join a batch (default: %(default)s)")
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="most requests per batch (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help="most waiting requests before RESOURCE_EXHAUSTED (default: %(default)s)")
    p.add_argument("--max-prompt-tokens", type=int, default=d.max_prompt_tokens,
                   help="longest prompt accepted, in tokens (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                   help="most tokens one request may generate (default: %(default)s)")
    p.add_argument("--top-k", type=int, default=d.attribution_top_k,
                   help="contributions named per attribution (default: %(default)s)")
    p.add_argument("--max-import-mb", type=float, default=d.max_import_bytes / 2**20,
                   help="most MiB of artifacts one ImportAdapter stream may carry (default: %(default)s)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("AILEDGER_SIDECAR_THREADS") or 2),
                   help="torch threads; fixed so results repeat (default: %(default)s; "
                   "env AILEDGER_SIDECAR_THREADS)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run: CUDA when available with 'auto' (default: %(default)s)")
    p.set_defaults(func=run)


def add_parser(subparsers: Any) -> None:
    """Register `sidecar` on the node CLI's subparsers."""
    p = subparsers.add_parser(
        "sidecar",
        help="run the gRPC sidecar that trains, serves and attributes LoRA adapters",
        description="Start the sidecar gRPC server (torch + peft): Train, Infer, Replay, Verify, "
        "Retrain, ExportAdapter, ImportAdapter, ListAdapters, LoadAdapter, UnloadAdapter, Stats; "
        "with health checking and reflection.",
    )
    add_arguments(p)


def config_from_args(args: argparse.Namespace) -> Any:
    from sidecar.config import ServeConfig, SidecarConfig

    return SidecarConfig(
        store=args.store,
        base_cache=args.base_cache,
        base_model_dir=args.base_model_dir,
        serve=ServeConfig(
            cache_max_adapters=args.cache_adapters,
            cache_max_bytes=int(args.cache_mb * 2**20),
            batch_window_ms=args.batch_window_ms,
            max_batch=args.max_batch,
            max_queue=args.max_queue,
            max_prompt_tokens=args.max_prompt_tokens,
            max_new_tokens=args.max_new_tokens,
            attribution_top_k=args.top_k,
            max_import_bytes=int(args.max_import_mb * 2**20),
        ),
        threads=args.threads,
        device=args.device,
        load_delay_s=args.test_load_delay_s,
    )


def quiet_libraries() -> None:
    """Keep the sidecar's output to what it says itself.

    - peft's ``PeftModel`` (0.21) reads ``model.is_gradient_checkpointing``, which
      transformers 5 deprecated with a FutureWarning on every ``get_peft_model``: peft's call,
      not ours, so that one warning (by its text and module) is filtered here, at the entry.
    - transformers draws a "Loading weights" tqdm bar; off a terminal (a log, ``ailedger
      dev``'s pipe) it would write carriage returns, so it is off there.
    """
    import warnings

    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated",
                            category=FutureWarning, module=r"transformers\.modeling_utils")
    if not sys.stderr.isatty():
        # transformers reads this when imported (importing it here would delay the port by
        # seconds); one imported already is told directly
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if "transformers.utils.logging" in sys.modules:
            sys.modules["transformers.utils.logging"].disable_progress_bar()


def run(args: argparse.Namespace) -> int:
    """Start the server (port open at once, health NOT_SERVING while the model loads) and
    block until SIGINT/SIGTERM; exit 1 if the base model cannot be loaded."""
    from sidecar.service import serve

    quiet_libraries()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        server = serve(config_from_args(args), args.host, args.port, log=log)
    except OSError as e:
        log(f"error: {e}")
        return 1
    print(f"Sidecar listening on {args.host}:{server.sidecar_port}", flush=True)
    service = server.sidecar_service
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    announced = False
    while not stop.wait(0.2):
        if service.ready.is_set() and not announced:
            announced = True
            if service.load_error is not None:
                server.stop(grace=0).wait()
                return 1
            print("Sidecar ready", flush=True)
    server.stop(grace=2).wait()
    if service.engine is not None:
        service.engine.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sidecar", description="ailedger sidecar (gRPC)")
    add_arguments(p)
    args = p.parse_args(argv)
    return int(args.func(args))
