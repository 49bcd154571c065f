"""A warm ``python -m seqdiff``: imports seqdiff (torch, Hydra, the recipes) once, then
runs each requested command line in a forked child exactly as ``python -m seqdiff ARGS``
would (``runpy`` of ``seqdiff.__main__``, ``sys.exit`` status, an uncaught exception
printed by the interpreter's hook with status 1), with its own cwd, environment and
captured stdout/stderr. Interpreter start-up (~2 s, most of it importing torch) is paid
once per test module instead of once per case.

Protocol: one JSON request per stdin line ``{"argv": [...], "cwd": ..., "env": {...}}``;
one JSON reply per stdout line ``{"rc": int, "stdout": str, "stderr": str}``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def warm_up() -> None:
    import hydra  # noqa: F401
    import torch  # noqa: F401

    import seqdiff_recipes.dna  # noqa: F401
    import seqdiff_recipes.records  # noqa: F401
    import seqdiff_recipes.text  # noqa: F401
    import seqdiff.cli.commands  # noqa: F401
    import seqdiff.cli.main  # noqa: F401

    try:
        import transformers  # noqa: F401  (the GPT-2/BERT/HF tokenizer domains)
    except ImportError:
        pass


def child(req: dict, out_path: str, err_path: str) -> None:
    import runpy

    code = 0
    try:
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, path in ((1, out_path), (2, err_path)):
            f = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        sys.argv = [sys.argv[0], *req["argv"]]
        try:
            runpy.run_module("seqdiff", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    sys.path.insert(0, os.getcwd())
    warm_up()
    reply = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the reply channel
    for line in sys.stdin:
        req = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            for p in (out_path, err_path):
                open(p, "w").close()
            reply.flush()
            pid = os.fork()
            if pid == 0:
                child(req, out_path, err_path)
            _, status = os.waitpid(pid, 0)
            rc = os.waitstatus_to_exitcode(status)
            with open(out_path, errors="replace") as f_out, open(err_path, errors="replace") as f_err:
                res = {"rc": rc, "stdout": f_out.read(), "stderr": f_err.read()}
        reply.write(json.dumps(res) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
