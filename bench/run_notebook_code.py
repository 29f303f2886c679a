"""Run the solution notebooks' code cells as plain Python, for a GPU machine without Jupyter.

Each notebook runs in a fresh process, its code cells in order in one namespace (IPython magics
dropped); the first failing cell stops that notebook and is printed with its traceback. Every
assertion the notebook makes is checked on whatever device ``course_utils.setup()`` picks;
stored outputs are not compared (nbval does that, on the CPU). Prints the time per notebook.

    MPLBACKEND=Agg python bench/run_notebook_code.py solutions/*.ipynb
"""
import json
import subprocess
import sys
import time
import traceback

def run_one(path):
    nb = json.load(open(path))
    g = {"__name__": "__main__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        try:
            exec(compile(src, f"{path}:cell{i}", "exec"), g)
        except Exception:
            print(f"FAILED {path} cell {i}:\n{src[:400]}\n---")
            traceback.print_exc()
            return 1
    return 0

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        sys.exit(run_one(sys.argv[2]))
    rc = 0
    for p in sys.argv[1:]:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, "--one", p], capture_output=True, text=True)
        dt = time.perf_counter() - t
        out = (r.stdout + r.stderr)
        lines = [l for l in out.splitlines() if "device" in l and "seed" in l][:1]
        print(f"{p}: rc={r.returncode} {dt:.1f} s {lines}")
        if r.returncode:
            print(out[-4000:])
        rc |= r.returncode
    sys.exit(rc)
