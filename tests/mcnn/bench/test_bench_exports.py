"""``mcnn.bench`` exports every benchmark lazily: importing the package loads none of them."""

from __future__ import annotations

import subprocess
import sys


def test_bench_package_exports_lazily():
    code = (
        "import sys, mcnn.bench as b\n"
        "assert 'mcnn.bench.stem' not in sys.modules and 'mcnn.bench.phase' not in sys.modules\n"
        "from mcnn.bench import run_stem_bench, run_phase_bench, StemBenchSettings\n"
        "import mcnn.bench.stem as s, mcnn.bench.phase as p\n"
        "assert run_stem_bench is s.run_stem_bench and run_phase_bench is p.run_phase_bench\n"
        "assert StemBenchSettings is s.StemBenchSettings\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
