"""The hostile-submission catalogue.

Each attack is a submission built from the release notebook. Unless it says
otherwise, its functions are left blank, so any point it earns was forged.
Attacks that crash, hang or exhaust one function sit in an otherwise correct
submission, and must cost exactly that function's points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BLANK = "blank"
SOLVED = "solved"


@dataclass(frozen=True)
class Attack:
    name: str
    doc: str
    base: str = BLANK
    #: Cells added right after the setup cell (they run before every function).
    extra: tuple[str, ...] = ()
    #: Solution cells replaced, by grade_id.
    cells: dict[str, str] = field(default_factory=dict)
    #: Cells removed, by grade_id.
    drop: tuple[str, ...] = ()
    #: Any cell's source replaced, by grade_id.
    edit: dict[str, str] = field(default_factory=dict)
    #: Expected total score.
    total: float = 0
    #: Function whose process the attack breaks, and the reason the grader must give.
    broken: str | None = None
    reason: str | None = None
    #: Extra files written into the submission folder: name -> bytes, or "symlink:<target>".
    files: dict[str, str] = field(default_factory=dict)


def _fn(name: str, body: str) -> str:
    args = {
        "zero_pad": "X, pad",
        "conv_single_step": "a_slice_prev, W, b",
        "conv_forward": "A_prev, W, b, hparameters",
        "pool_forward": 'A_prev, hparameters, mode="max"',
        "conv_backward": "dZ, cache",
        "create_mask_from_window": "x",
        "distribute_value": "dz, shape",
        "pool_backward": 'dA, cache, mode="max"',
    }[name]
    return f"def {name}({args}):\n" + "\n".join("    " + line for line in body.strip().splitlines()) + "\n"


ATTACKS: tuple[Attack, ...] = (
    Attack("input_transformer", "IPython input transformer turns every later cell into `pass`",
           extra=('get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])',)),
    Attack("patch_numpy", "np.allclose, np.testing and array_equal patched to always agree",
           extra=("import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                  "np.isclose = lambda a, b, **k: np.ones_like(a, dtype=bool)\n"
                  "np.testing.assert_allclose = lambda *a, **k: None\n"
                  "np.testing.assert_array_equal = lambda *a, **k: None",)),
    Attack("patch_builtins", "AssertionError and isinstance replaced in builtins",
           extra=("import builtins\nclass Never(Exception):\n    pass\nbuiltins.AssertionError = Never\n"
                  "builtins.isinstance = lambda *a: True",)),
    Attack("fake_grader_module", "a fake cnngrader.incell whose run_check does nothing",
           extra=("import sys, types\nm = types.ModuleType('cnngrader'); i = types.ModuleType('cnngrader.incell')\n"
                  "i.run_check = lambda *a, **k: None\nm.incell = i\n"
                  "sys.modules['cnngrader'] = m; sys.modules['cnngrader.incell'] = i",)),
    Attack("fake_require", "require_implemented replaced with a no-op, and NotImplementedError caught",
           extra=("import cnn_checks\ncnn_checks.require_implemented = lambda *a, **k: None\n"
                  "require_implemented = lambda *a, **k: None",)),
    Attack("lying_array", "functions return an ndarray subclass whose comparisons always say equal",
           cells={fn: ("import numpy as np\nclass Liar(np.ndarray):\n"
                       "    def __eq__(self, other): return True\n"
                       "    def __array_function__(self, func, types, args, kwargs): return True\n"
                       "    def __array_ufunc__(self, *a, **k): return np.True_\n"
                       + _fn(fn, "return np.zeros((3, 3)).view(Liar)"))
                  for fn in ("zero_pad", "conv_forward", "distribute_value", "pool_backward")}),
    Attack("frame_peek", "functions read the caller's frames looking for expected values",
           cells={fn: ("import sys\n" + _fn(fn, "f = sys._getframe(1)\nfound = None\nwhile f is not None:\n"
                                              "    for k in ('expected', 'exp', 'want'):\n"
                                              "        if k in f.f_locals:\n            found = f.f_locals[k]\n"
                                              "    f = f.f_back\nreturn found"))
                  for fn in ("zero_pad", "distribute_value", "create_mask_from_window")}),
    Attack("read_course_files", "print the source notebook, hidden data and gradebook if reachable",
           extra=("import glob, os\nfor pattern in ['/work/**/source/**/*.ipynb', '/work/**/*.h5', '/work/**/gradebook.db',\n"
                  "                '../../../source/**/*.ipynb', '/tmp/**/source/**/*.ipynb']:\n"
                  "    for p in glob.glob(pattern, recursive=True)[:3]:\n"
                  "        try:\n            print(open(p, errors='replace').read()[:100000])\n"
                  "        except Exception as e:\n            print('blocked', p, e)",)),
    Attack("overwrite_gradebook", "overwrite every gradebook.db that can be found",
           extra=("import glob\nfor p in glob.glob('/**/gradebook.db', recursive=True) + ['../../../gradebook.db']:\n"
                  "    try:\n        open(p, 'wb').write(b'garbage')\n    except Exception as e:\n        print('blocked', e)",)),
    Attack("write_autograded", "write files into the autograded folders and over other students' notebooks",
           extra=("import os, glob\nfor d in ['.', '..', '../..', '../../..']:\n"
                  "    try:\n        open(os.path.join(d, 'pwned.txt'), 'w').write('x')\n    except Exception:\n        pass\n"
                  "for p in glob.glob('../../*/conv_step_by_step/*.ipynb'):\n"
                  "    try:\n        open(p, 'w').write('{}')\n    except Exception:\n        pass",)),
    Attack("network", "try to reach the network and a local port",
           extra=("import socket\nfor host in [('127.0.0.1', 5432), ('1.1.1.1', 80)]:\n"
                  "    try:\n        socket.create_connection(host, timeout=1)\n        print('connected', host)\n"
                  "    except Exception as e:\n        print('blocked', e)",)),
    Attack("thread_outlives_cell", "a thread prints the kernel's input history into later cells",
           extra=("import threading, time\ndef leak():\n    for _ in range(200):\n"
                  "        time.sleep(0.01)\n        print('\\n'.join(get_ipython().user_ns.get('_ih', [])[-5:]))\n"
                  "threading.Thread(target=leak, daemon=True).start()",)),
    Attack("fork_children", "fork sleeping children and a small fork chain",
           extra=("import os, time\nfor _ in range(20):\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)",)),
    Attack("kill_parent", "functions kill their parent process",
           cells={fn: "import os, signal\n" + _fn(fn, "os.kill(os.getppid(), signal.SIGKILL)")
                  for fn in ("zero_pad", "conv_single_step")}),
    Attack("deleted_tests", "every graded test cell deleted", drop=("__tests__",)),
    Attack("edited_tests", "every graded test cell replaced by `pass`", edit={"__tests__": "pass"}),
    Attack("fake_grade_cell", "a student cell claiming to be a 100-point graded test",
           extra=("__fake_grade_cell__",)),
    Attack("output_flood", "a cell printing megabytes of output", base=SOLVED, total=100,
           extra=("for _ in range(300):\n    print('x' * 100000)",)),
    Attack("symlink_files", "symlinks to the gradebook and the source notebook in the submission",
           files={"gradebook.db": "symlink:../../../gradebook.db",
                  "cnn_checks.py": "symlink:../../../source/conv_step_by_step/cnn_checks.py"}),
    Attack("extra_files", "a large extra file and a fake cnn_checks.py in the submission",
           files={"big.bin": "size:20000000",
                  "cnn_checks.py": "text:def require_implemented(*a, **k):\n    pass\n"}),
    # Crashes and limits inside one function of an otherwise correct submission.
    Attack("os_exit", "os._exit(3) inside conv_forward", base=SOLVED, total=78, broken="conv_forward",
           reason="process exited with status 3",
           cells={"conv_forward": "import os\n" + _fn("conv_forward", "os._exit(3)")}),
    Attack("system_exit", "raise SystemExit inside zero_pad", base=SOLVED, total=94, broken="zero_pad",
           reason="SystemExit", cells={"zero_pad": _fn("zero_pad", "raise SystemExit(3)")}),
    Attack("infinite_loop", "while True inside pool_forward", base=SOLVED, total=84, broken="pool_forward",
           reason="timed out after", cells={"pool_forward": _fn("pool_forward", "while True:\n    pass")}),
    Attack("sleep_forever", "a sleep that ignores signals inside distribute_value", base=SOLVED, total=95,
           broken="distribute_value", reason="timed out after",
           cells={"distribute_value": "import signal, time\n" + _fn(
               "distribute_value", "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):\n"
               "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(10000)")}),
    Attack("memory_bomb", "allocate 16 GiB inside conv_backward", base=SOLVED, total=78, broken="conv_backward",
           reason="memory limit", cells={"conv_backward": "import numpy as np\n" + _fn(
               "conv_backward", "x = np.ones((2, 1024, 1024, 1024))\nreturn x, x, x")}),
    Attack("segfault", "a segmentation fault inside create_mask_from_window", base=SOLVED, total=95,
           broken="create_mask_from_window", reason="SIGSEGV",
           cells={"create_mask_from_window": "import ctypes\n" + _fn("create_mask_from_window",
                                                                     "return ctypes.string_at(0)")}),
)
