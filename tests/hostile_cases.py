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
    #: Extra files written into the submission folder, name -> spec: "text:<content>", "size:<bytes>",
    #: "symlink:<target>", "fifo:", "deep:<levels>" (nested folders) or "many:<count>" (one-byte files).
    #: Names may hold bytes that are not UTF-8 (as surrogate escapes).
    files: dict[str, str] = field(default_factory=dict)
    #: Phrases that must appear in the failure messages.
    says: tuple[str, ...] = ()
    #: Source of a markdown cell added after the setup cell.
    markdown: str | None = None
    #: Save the notebook under this name instead of the assignment's.
    rename: str | None = None


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


STEAL = """
import glob, json, os, sys
for path in glob.glob('/run/**', recursive=True) + glob.glob('/tmp/**', recursive=True):
    if path.endswith(('.json', '.npz')):
        try:
            sources = json.load(open(path)).get('helper_sources', {})
            ns = {}
            exec(sources[sys._getframe().f_code.co_name], ns)
            return ns[sys._getframe().f_code.co_name](*[a for a in locals().values()][:3])
        except Exception:
            pass
me = sys._getframe().f_code.co_name
for module in list(sys.modules.values()):
    for name, obj in list(getattr(module, '__dict__', {}).items()):
        if callable(obj) and name == me and getattr(obj, '__code__', None) is not sys._getframe().f_code:
            try:
                return obj(*list(locals().values())[:3])
            except Exception:
                pass
raise NotImplementedError()
"""

FORGE = """
frame = lambda kind, payload: kind + len(payload).to_bytes(4, 'little') + payload
fake = frame(b'R', (0).to_bytes(4, 'little') + b'CNW1' + b'garbage') + frame(b'S', b'{"status": "exit", "code": 0}')
for fd in range(64):
    try:
        os.write(fd, fake * 4)
    except OSError:
        pass
for folder in ['/run/cnn/out', '/tmp', '.', '/home/student', '/run/submission']:
    try:
        open(os.path.join(folder, 'test_zero_pad_shape.npz'), 'wb').write(b'x' * 100)
    except OSError:
        pass
return np.zeros((A_prev.shape[0], 1, 1, W.shape[-1])), (A_prev, W, b, hparameters)
"""

LEAK = """
found = []
for path in glob.glob('/run/**', recursive=True)[:50]:
    try:
        found.append(open(path, errors='replace').read(2000))
    except Exception:
        pass
arrays = [a for a in (globals().get('X'), ) if a is not None]
raise Leaky(repr([np.asarray(x).ravel()[:50].tolist() for x in list(locals().values())[:2]
                  if isinstance(x, np.ndarray)]) + ' '.join(found))
"""

HANG = """
for fd in range(64):
    try:
        os.write(fd, b'R' + (1 << 30).to_bytes(4, 'little'))
    except OSError:
        pass
try:
    os.mkfifo('result.npz')
    open('result.npz', 'rb').read()
except OSError:
    pass
time.sleep(10000)
"""

BOMB = """
for fd in range(64):
    try:
        os.write(fd, b'R' + (2**32 - 1).to_bytes(4, 'little') + b'CNW1' + struct.pack('<I', 200) +
                 b'{"tree": {"a": "a0", "t": "ndarray"}, "arrays": {"a0": ["<f8", [2147483647, 2147483647], 0, 8]}}')
    except OSError:
        pass
return None
"""

FLOOD = """
from IPython.display import HTML, display
handle = display(HTML('<b>start</b>'), display_id=True)
for k in range(400):
    handle.update(HTML('<p>' + 'x' * 200000 + '</p>'))
for k in range(100):
    display({'text/plain': 'y' * 100000}, raw=True)
'z' * 5000000
"""

XSS = """
from IPython.display import HTML, Javascript, SVG, display
display(HTML('<script>window.__pwned = "script"; document.title = "PWNED"</script>'))
display(HTML('<img src="x" onerror="window.__pwned = \\'onerror\\'; document.title = \\'PWNED\\'">'))
display(HTML('<a href="javascript:window.__pwned=1">click</a><iframe src="javascript:alert(1)"></iframe>'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1"><script>window.__pwned=1</script></svg>'))
display(Javascript('window.__pwned = "javascript"'))
display({'text/markdown': '<img src=x onerror="window.__pwned=1">'}, raw=True)
"""

XSS_MARKDOWN = ('Student notes <script>window.__pwned = "markdown"</script> '
                '<img src="x" onerror="window.__pwned = \'md-onerror\'"> '
                '[click me](javascript:window.__pwned=1) <a href="JaVaScRiPt:window.__pwned=1">x</a>')

NUMERIC_CONV = """
import numpy as np

def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    eps = 1e-6
    def loss():
        return np.sum(conv_forward(A_prev, W, b, hparameters)[0] * dZ)
    grads = []
    for x in (A_prev, W, b):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + eps
            up = loss()
            x[idx] = old - eps
            down = loss()
            x[idx] = old
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return tuple(grads)
"""

NUMERIC_POOL = """
import numpy as np

fwd = pool_forward

def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    eps = 1e-6
    g = np.zeros_like(A_prev)
    for idx in np.ndindex(A_prev.shape):
        old = A_prev[idx]
        A_prev[idx] = old + eps
        up = np.sum(fwd(A_prev, hparameters, mode)[0] * dA)
        A_prev[idx] = old - eps
        down = np.sum(fwd(A_prev, hparameters, mode)[0] * dA)
        A_prev[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g
"""

ZERO_STUBS = {
    "zero_pad": "return np.zeros((X.shape[0], X.shape[1] + 2 * pad, X.shape[2] + 2 * pad, X.shape[3]))",
    "conv_single_step": "return 0.0",
    "conv_forward": ("f, s, p = W.shape[0], hparameters['stride'], hparameters['pad']\n"
                     "m, h, w, _ = A_prev.shape\n"
                     "Z = np.zeros((m, (h - f + 2 * p) // s + 1, (w - f + 2 * p) // s + 1, W.shape[3]))\n"
                     "return Z, (A_prev, W, b, hparameters)"),
    "pool_forward": ("f, s = hparameters['f'], hparameters['stride']\nm, h, w, c = A_prev.shape\n"
                     "return np.zeros((m, (h - f) // s + 1, (w - f) // s + 1, c)), (A_prev, hparameters)"),
    "conv_backward": "A_prev, W, b, _ = cache\nreturn np.zeros(A_prev.shape), np.zeros(W.shape), np.zeros(b.shape)",
    "create_mask_from_window": "return np.zeros(x.shape, dtype=bool)",
    "distribute_value": "return np.zeros(shape)",
    "pool_backward": "return np.zeros(cache[0].shape)",
}

BUSY = """
while True:
    start = time.monotonic()
    while time.monotonic() - start < 0.1:
        pass
    time.sleep(0.2)
"""

HOG = """
import os, time
for _ in range(20):
    if os.fork() == 0:
        os.setsid()
        deadline = time.time() + 600
        while time.time() < deadline:
            pass
        os._exit(0)
"""

FILL = """
written = 0
for folder in ['.', '/tmp', '/dev/shm', '/home/student', os.path.expanduser('~')]:
    for k in range(200):
        try:
            with open(os.path.join(folder, f'fill{k}.bin'), 'wb') as fh:
                fh.write(b'0' * (64 << 20))
            written += 64
        except OSError:
            break
return np.zeros(X.shape)
"""

SPLIT_MEMORY = """
import os, time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            block = bytearray(1500 << 20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(1)
        finally:
            os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


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
    Attack("fake_require", "require_checks replaced with a no-op, and NotImplementedError caught",
           extra=("import cnn_checks\ncnn_checks.require_checks = lambda *a, **k: None\n"
                  "require_checks = cnn_checks.require_implemented = require_implemented = cnn_checks.require_checks",)),
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
           # Everywhere a course could live (walking /usr too only makes the test slower).
           extra=("import glob\nroots = ['/work', '/home', '/tmp', '/srv', '/root', '/opt', '/var', '/run', '/mnt']\n"
                  "found = [p for r in roots for p in glob.glob(r + '/**/gradebook.db', recursive=True)]\n"
                  "for p in found + ['../../../gradebook.db', '../gradebook.db', 'gradebook.db']:\n"
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
                  "cnn_checks.py": "text:def require_checks(*a, **k):\n    pass\nrequire_implemented = require_checks\n"}),
    # Crashes and limits inside one function of an otherwise correct submission.
    Attack("os_exit", "os._exit(3) inside conv_forward", base=SOLVED, total=78, broken="conv_forward",
           reason="process exited with status 3",
           cells={"conv_forward": "import os\n" + _fn("conv_forward", "os._exit(3)")}),
    Attack("system_exit", "raise SystemExit inside zero_pad", base=SOLVED, total=94, broken="zero_pad",
           reason="SystemExit", cells={"zero_pad": _fn("zero_pad", "raise SystemExit(3)")}),
    Attack("infinite_loop", "while True inside pool_forward", base=SOLVED, total=84, broken="pool_forward",
           reason="CPU limit", cells={"pool_forward": _fn("pool_forward", "while True:\n    pass")}),
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
    # ---- A one-way sandbox (issue 8) --------------------------------------------------------------
    Attack("steal_reference_helpers", "stubs that look for job files and for reference helpers to call",
           cells={fn: _fn(fn, STEAL) for fn in ("zero_pad", "conv_single_step", "create_mask_from_window",
                                                "distribute_value")}),
    Attack("forge_other_results", "conv_forward forges result frames on every descriptor and writes "
           "into any shared result folder", cells={"conv_forward": "import numpy as np, os\n" + _fn(
               "conv_forward", FORGE)}),
    Attack("leak_through_exceptions", "functions raise exceptions quoting their inputs and any file they find",
           cells={fn: "import numpy as np, glob\n" + _fn(fn, LEAK) for fn in
                  ("zero_pad", "conv_forward", "pool_forward", "conv_backward", "pool_backward")},
           extra=("class Leaky(Exception):\n    pass\nLeaky.__name__ = 'np_pad_X_pad_pad_mode_constant'",)),
    Attack("hang_the_channel", "a function writes half a frame to every descriptor, makes a FIFO and waits",
           cells={"zero_pad": "import os, time\n" + _fn("zero_pad", HANG)}),
    Attack("result_bombs", "results far over the size cap, a deeply nested result and a huge declared shape",
           cells={"zero_pad": "import numpy as np\n" + _fn("zero_pad", "return np.ones((4096, 4096))"),
                  "conv_single_step": _fn("conv_single_step", "x = []\nfor _ in range(100000):\n    x = [x]\nreturn x"),
                  "distribute_value": "import os, struct\n" + _fn("distribute_value", BOMB)}),
    Attack("display_update_flood", "display updates, display data and results far over the output caps",
           base=SOLVED, total=100, extra=(FLOOD,)),
    Attack("script_injection", "script tags, onerror handlers, javascript: links, SVG and raw HTML cells",
           base=SOLVED, total=100, extra=(XSS,), markdown=XSS_MARKDOWN),
    Attack("numeric_gradient", "backward passes as central differences of the student's own forward pass",
           base=SOLVED, total=60, broken=None, cells={"conv_backward": NUMERIC_CONV, "pool_backward": NUMERIC_POOL},
           says=("conv_backward must not call conv_forward", "pool_backward must not call pool_forward")),
    Attack("zero_stubs", "every function returns zeros (or False) of exactly the right shape",
           cells={fn: "import numpy as np\n" + _fn(fn, body) for fn, body in ZERO_STUBS.items()},
           says=("does not depend on the input values",)),
    Attack("syntax_error", "a syntax error in the conv_forward cell of an otherwise correct notebook",
           base=SOLVED, total=78, broken="conv_forward", reason="has a syntax error at line",
           cells={"conv_forward": "def conv_forward(A_prev, W, b, hparameters):\n    return (\n"}),
    # ---- One student cannot hurt another (issue 9) -------------------------------------------------
    Attack("cpu_hog", "twenty spinning processes that leave their session, in the kernel and every function",
           extra=(HOG,)),
    Attack("busy_then_wall_clock", "distribute_value keeps busy a third of the time and never finishes",
           base=SOLVED, total=95, broken="distribute_value", reason="timed out after",
           cells={"distribute_value": "import time\n" + _fn("distribute_value", BUSY)}),
    Attack("disk_and_memory_fill", "fill every writable place and split memory over three processes",
           cells={"zero_pad": "import numpy as np, os\n" + _fn("zero_pad", FILL)}, extra=(SPLIT_MEMORY,)),
    Attack("hostile_file_names", "names that are not UTF-8, terminal escapes, a FIFO, deep folders, many files",
           base=SOLVED, total=100,
           files={"\udcff\udcfe-not-utf8.py": "text:x = 1\n", "\x1b[2J\x1b[H\u202eevil.txt": "text:boo\n",
                  "pipe": "fifo:", "deep": "deep:1100", "many": "many:12000"}),
    Attack("escape_sequence_notebook", "the notebook renamed to a terminal escape sequence that redraws the row",
           rename="\x1b[2K\r\x1b[1A h_escape_sequence_notebook 6 6 22 16 22 5 5 18 100 .ipynb"),
)

